"""WindowData: R-CNN training windows warped from images, as Caffe's WindowDataLayer makes them."""
import os

import numpy as np

from layerforge.data import DatasetError
from layerforge.data.images import read_image, resize
from layerforge.data.transform import load_mean_file, with_legacy_fields
from layerforge.layer import Layer
from layerforge.registry import register_layer

IMAGE, LABEL, OVERLAP, X1, Y1, X2, Y2 = range(7)


def read_window_file(path, root_folder, fg_threshold, bg_threshold):
    """Images [(path, (C, H, W))] and the fg / bg windows (rows: image index, label, overlap,
    x1, y1, x2, y2) of a window file. Each image is `# index`, its path, channels, height,
    width, the number of windows, then one `label overlap x1 y1 x2 y2` line per window; a
    window's image is the index-th image of the file, as in Caffe.
    Windows with overlap >= fg_threshold are foreground (label > 0), those below
    bg_threshold background (label 0); the others are not used."""
    try:
        with open(path, encoding="utf-8") as handle:
            tokens = handle.read().split()
    except OSError as err:
        raise DatasetError(f"cannot read the window file: {err}") from None
    images, fg, bg = [], [], []
    position = 0
    try:
        while position < len(tokens):
            if tokens[position] != "#":
                raise DatasetError(f"expected '#' before image {len(images)}, got {tokens[position]!r}")
            index, name = int(tokens[position + 1]), tokens[position + 2]
            size = tuple(int(t) for t in tokens[position + 3:position + 6])
            count = int(tokens[position + 6])
            position += 7
            for _ in range(count):
                label, overlap = int(tokens[position]), float(np.float32(tokens[position + 1]))
                box = [int(t) for t in tokens[position + 2:position + 6]]
                position += 6
                if overlap >= fg_threshold:
                    if label <= 0:
                        raise DatasetError(f"image {name}: a foreground window has label {label}; "
                                           f"foreground labels must be > 0")
                    fg.append([index, label, overlap] + box)
                elif overlap < bg_threshold:
                    bg.append([index, 0, 0] + box)
            images.append((root_folder + name, size))
    except DatasetError:
        raise
    except (IndexError, ValueError):
        raise DatasetError(f"truncated or malformed after image {len(images)} "
                           f"(expected '# index path channels height width count' and "
                           f"'label overlap x1 y1 x2 y2' lines)") from None
    if not fg or not bg:
        raise DatasetError(f"needs foreground and background windows, found {len(fg)} and {len(bg)}")
    if max(window[IMAGE] for window in fg + bg) >= len(images):
        raise DatasetError(f"a window names image index {max(w[IMAGE] for w in fg + bg)}, but the file lists "
                           f"{len(images)} images (indices count from 0 in file order)")
    return images, np.array(fg, np.float64), np.array(bg, np.float64)


def _round(value):
    """C's round(): halves away from zero."""
    return int(np.sign(value) * np.floor(abs(value) + 0.5))


@register_layer("WindowData")
class WindowDataLayer(Layer):
    """Tops: data (N×C×crop×crop) and label (N). A batch holds N − ⌊N·fg_fraction⌋ background
    windows then ⌊N·fg_fraction⌋ foreground ones, each drawn at random from its set. A window
    is warped (bilinear) to crop_size×crop_size; with context_pad it is first enlarged so
    that context_pad pixels of context surround it after the warp, and crop_mode "square"
    makes it square first; parts outside the image stay 0. `mirror` flips at random in every
    phase and the mean is subtracted and `scale` applied, all as in Caffe.
    """

    exact_num_bottom = 0
    exact_num_top = 2
    has_backward = False

    def setup(self, bottom, top):
        wp = self.param.window_data_param
        tp = with_legacy_fields(self.param.transform_param, wp)
        self._crop, self._scale, self._mirror = tp.crop_size, tp.scale, tp.mirror
        if self._crop < 1:
            raise self.error("transform_param.crop_size (or window_data_param.crop_size) must be set: "
                             "windows are warped to crop_size x crop_size")
        if wp.batch_size < 1:
            raise self.error(f"window_data_param.batch_size must be at least 1, got {wp.batch_size}")
        if wp.crop_mode not in ("warp", "square"):
            raise self.error(f"window_data_param.crop_mode must be \"warp\" or \"square\", got {wp.crop_mode!r}")
        if 2 * wp.context_pad >= self._crop:
            raise self.error(f"window_data_param.context_pad {wp.context_pad} leaves no room in crop_size {self._crop}")
        try:
            self._images, self._fg, self._bg = read_window_file(
                os.path.expanduser(wp.source), wp.root_folder, wp.fg_threshold, wp.bg_threshold)
        except DatasetError as err:
            raise self.error(f"window_data_param.source {wp.source!r}: {err}") from err
        self._channels = self._images[0][1][0]
        self._mean = self._mean_values = None
        if tp.mean_file and len(tp.mean_value):
            raise self.error("transform_param: give mean_file or mean_value, not both")
        if tp.mean_file:
            try:
                self._mean = load_mean_file(tp.mean_file)
            except DatasetError as err:
                raise self.error(str(err)) from err
            if self._mean.shape[0] != self._channels or min(self._mean.shape[1:]) < self._crop:
                raise self.error(f"transform_param.mean_file is {'x'.join(map(str, self._mean.shape))}; "
                                 f"it needs {self._channels} channels of at least {self._crop}x{self._crop}")
        elif len(tp.mean_value):
            if len(tp.mean_value) not in (1, self._channels):
                raise self.error(f"transform_param.mean_value: give 1 or {self._channels} values, "
                                 f"got {len(tp.mean_value)}")
            self._mean_values = np.broadcast_to(np.asarray(tp.mean_value, np.float32),
                                                (self._channels,))[:, None, None]
        self._cache = {}
        self._rng = np.random.default_rng(int(self.rng.integers(2 ** 63)))

    def reshape(self, bottom, top):
        batch = self.param.window_data_param.batch_size
        top[0].reshape((batch, self._channels, self._crop, self._crop))
        top[1].reshape((batch,))

    def forward(self, bottom, top):
        wp = self.param.window_data_param
        num_fg = int(wp.batch_size * wp.fg_fraction)
        top[0].data[...] = 0
        item = 0
        for windows, count in ((self._bg, wp.batch_size - num_fg), (self._fg, num_fg)):
            for _ in range(count):
                window = windows[self._rng.integers(len(windows))]
                mirror = bool(self._mirror and self._rng.integers(2))
                top[0].data[item] = self._warp(window, mirror)
                top[1].data[item] = window[LABEL]
                item += 1

    def _image(self, index):
        path, (channels, _, _) = self._images[index]
        image = self._cache.get(index)
        if image is None:
            image = read_image(path, channels == 3)
            if image.shape[0] != self._channels:
                raise self.error(f"{path} has {image.shape[0]} channels, the first image {self._channels}")
            if self.param.window_data_param.cache_images:
                self._cache[index] = image
        return image

    def _warp(self, window, mirror):
        """One crop×crop output: the window's (context-padded) region, warped and placed."""
        wp = self.param.window_data_param
        crop = self._crop
        image = self._image(int(window[IMAGE]))
        height, width = image.shape[1:]
        x1, y1, x2, y2 = (int(v) for v in window[X1:Y2 + 1])
        crop_h = crop_w = crop
        pad_h = pad_w = 0
        if wp.context_pad > 0 or wp.crop_mode == "square":
            context_scale = crop / (crop - 2 * wp.context_pad)
            half_h, half_w = (y2 - y1 + 1) / 2, (x2 - x1 + 1) / 2
            center_x, center_y = x1 + half_w, y1 + half_h
            if wp.crop_mode == "square":
                half_h = half_w = max(half_h, half_w)
            x1, x2 = _round(center_x - half_w * context_scale), _round(center_x + half_w * context_scale)
            y1, y2 = _round(center_y - half_h * context_scale), _round(center_y + half_h * context_scale)
            unclipped_h, unclipped_w = y2 - y1 + 1, x2 - x1 + 1
            pad_x1, pad_y1 = max(0, -x1), max(0, -y1)
            pad_x2, pad_y2 = max(0, x2 - width + 1), max(0, y2 - height + 1)
            x1, x2, y1, y2 = x1 + pad_x1, x2 - pad_x2, y1 + pad_y1, y2 - pad_y2
            scale_x, scale_y = crop / unclipped_w, crop / unclipped_h
            crop_w, crop_h = _round((x2 - x1 + 1) * scale_x), _round((y2 - y1 + 1) * scale_y)
            pad_h = _round(pad_y1 * scale_y)
            pad_w = _round((pad_x2 if mirror else pad_x1) * scale_x)
            crop_h, crop_w = min(crop_h, crop - pad_h), min(crop_w, crop - pad_w)
        if not (0 <= x1 <= x2 < width and 0 <= y1 <= y2 < height):
            raise self.error(f"{self._images[int(window[IMAGE])][0]}: window ({x1}, {y1}, {x2}, {y2}) "
                             f"is outside the {width}x{height} image")
        patch = resize(image[:, y1:y2 + 1, x1:x2 + 1], crop_h, crop_w).astype(np.float32)
        if mirror:
            patch = patch[:, :, ::-1]
        if self._mean is not None:
            off = (self._mean.shape[2] - crop) // 2
            patch -= self._mean[:, off + pad_h:off + pad_h + crop_h, off + pad_w:off + pad_w + crop_w]
        elif self._mean_values is not None:
            patch -= self._mean_values
        out = np.zeros((self._channels, crop, crop), np.float32)
        out[:, pad_h:pad_h + crop_h, pad_w:pad_w + crop_w] = patch * np.float32(self._scale)
        return out

    def get_state(self):
        return {"rng": self._rng.bit_generator.state}

    def set_state(self, state):
        self._rng.bit_generator.state = state["rng"]
