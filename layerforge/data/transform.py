"""Caffe's DataTransformer for whole batches, plus seeded augmentation (TRAIN only).

Order per image: [augmentation: crop_pad shift, affine warp] -> crop -> (x - mean) * scale
-> mirror -> [augmentation: contrast, brightness]. As in Caffe, the crop is random in
TRAIN and centred otherwise, mirroring happens in TRAIN only, and a mean_file is
cropped at the image's offsets. Geometric augmentation fills with 0 (raw pixel value);
contrast multiplies by U[1-c, 1+c], brightness adds U[-b, b] in scaled units.

The affine warp is Koch et al.'s (2015) distortion, about the image centre: each image
is zoomed (per axis by U[1-zoom, 1+zoom]), sheared (x += s_x·y, y += s_y·x with s_x, s_y
~ U[-shear, shear]), rotated counter-clockwise by U[-rotation, rotation] degrees and
shifted (per axis by U[-translation, translation] pixels), then resampled bilinearly.
Only the ranges that are set draw random numbers, in that order: rotation, shear, zoom,
translation.
color_order is accepted and ignored: records are used in the channel order stored.
"""
import numpy as np

from layerforge.data import DatasetError
from layerforge.io import ConfigError, blobproto_to_array
from layerforge.kernels.transform import affine_bilinear
from layerforge.proto import layerforge_pb2 as pb


def load_mean_file(path):
    """The C×H×W mean image stored in a binary BlobProto (Caffe's .binaryproto)."""
    blob = pb.BlobProto()
    try:
        with open(path, "rb") as f:
            blob.ParseFromString(f.read())
    except OSError as err:
        raise DatasetError(f"transform_param.mean_file {path!r}: cannot read it: {err}") from err
    except Exception as err:
        raise DatasetError(f"transform_param.mean_file {path!r}: not a binary BlobProto: {err}") from err
    try:
        mean = blobproto_to_array(blob, f"transform_param.mean_file {path!r}").astype(np.float32)
    except ConfigError as err:
        raise DatasetError(str(err)) from None
    if mean.ndim == 4 and mean.shape[0] == 1:
        mean = mean[0]
    if mean.ndim != 3:
        raise DatasetError(f"transform_param.mean_file {path!r}: expected one C×H×W mean image, "
                           f"got shape {mean.shape}")
    return mean


def with_legacy_fields(transform_param, legacy):
    """transform_param, with the deprecated scale / mean_file / crop_size / mirror of a data
    layer's own parameter (data_param, image_data_param, window_data_param) where it sets none."""
    merged = pb.TransformationParameter()
    merged.CopyFrom(transform_param)
    for field in ("scale", "mean_file", "crop_size", "mirror"):
        if legacy.HasField(field) and not merged.HasField(field):
            setattr(merged, field, getattr(legacy, field))
    return merged


def compute_image_mean(images):
    """The C×H×W mean (float32) of N×C×H×W images, summed in float64 as Caffe's tool does."""
    return images.mean(axis=0, dtype=np.float64).astype(np.float32)


def write_mean_file(mean, path):
    """Write a C×H×W mean image as a binary BlobProto (1×C×H×W in Caffe's num/channels/
    height/width fields, as compute_image_mean writes it)."""
    from layerforge import io

    blob = pb.BlobProto(num=1, channels=mean.shape[0], height=mean.shape[1], width=mean.shape[2])
    blob.data.extend(np.asarray(mean, np.float32).ravel())
    io.write_atomic(path, blob.SerializeToString())
    return path


def _crop(images, oy, ox, height, width):
    """images[m, :, oy[m]:oy[m]+height, ox[m]:ox[m]+width] for every m, without a Python loop."""
    rows = (oy[:, None] + np.arange(height))[:, None, :, None]
    cols = (ox[:, None] + np.arange(width))[:, None, None, :]
    items = np.arange(len(images))[:, None, None, None]
    chans = np.arange(images.shape[1])[None, :, None, None]
    return images[items, chans, rows, cols]


def affine_maps(aug, num, rng):
    """num random inverse maps (num×2×3, output -> source, for affine_bilinear) of the warp
    described in the module docstring, with aug's ranges."""
    angle = np.radians(rng.uniform(-aug.rotation, aug.rotation, num)) if aug.rotation else np.zeros(num)
    shear = rng.uniform(-aug.shear, aug.shear, (num, 2)) if aug.shear else np.zeros((num, 2))
    zoom = rng.uniform(1 - aug.zoom, 1 + aug.zoom, (num, 2)) if aug.zoom else np.ones((num, 2))
    shift = rng.uniform(-aug.translation, aug.translation, (num, 2)) if aug.translation else np.zeros((num, 2))
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)   # counter-clockwise on screen
    skew = np.stack([np.stack([np.ones(num), shear[:, 0]], -1), np.stack([shear[:, 1], np.ones(num)], -1)], -2)
    inverse = np.linalg.inv(turn @ skew @ (zoom[:, :, None] * np.eye(2)))
    return np.concatenate([inverse, -(inverse @ shift[:, :, None])], axis=2)


class DataTransformer:
    """Turns a batch of raw M×C×H×W records into float32 network input."""

    def __init__(self, param, phase, shape):
        channels, height, width = shape
        self.train = phase == pb.TRAIN
        self.scale = param.scale
        self.mirror = param.mirror and self.train
        self.crop_size = param.crop_size
        if self.crop_size > min(height, width):
            raise DatasetError(f"transform_param.crop_size {self.crop_size} is larger than the "
                               f"{height}x{width} images")
        self.mean = None
        if param.mean_file and len(param.mean_value):
            raise DatasetError("transform_param: give mean_file or mean_value, not both")
        if param.mean_file:
            self.mean = load_mean_file(param.mean_file)
            if self.mean.shape != tuple(shape):
                raise DatasetError(f"transform_param.mean_file {param.mean_file!r} is "
                                   f"{'x'.join(map(str, self.mean.shape))}, the data is "
                                   f"{channels}x{height}x{width}")
        elif len(param.mean_value):
            if len(param.mean_value) not in (1, channels):
                raise DatasetError(f"transform_param.mean_value: give 1 or {channels} values "
                                   f"(one per channel), got {len(param.mean_value)}")
            self.mean = np.broadcast_to(np.asarray(param.mean_value, np.float32)[:, None, None],
                                        (channels, 1, 1)).copy()
        aug = param.augmentation
        self.aug = aug if self.train and (aug.crop_pad or aug.rotation or aug.shear or aug.zoom
                                          or aug.translation or aug.brightness or aug.contrast) else None
        self.aug_rng = np.random.default_rng(aug.seed) if self.aug and aug.seed >= 0 else None
        size = self.crop_size
        self.output_shape = (channels, size or height, size or width)

    @property
    def draws_random(self):
        """Whether transforming a batch draws random numbers (then an item depends on the batch)."""
        return self.aug is not None or self.mirror or (self.train and self.crop_size > 0)

    def get_state(self):
        return None if self.aug_rng is None else self.aug_rng.bit_generator.state

    def set_state(self, state):
        if self.aug_rng is not None:
            self.aug_rng.bit_generator.state = state

    def __call__(self, images, rng):
        """Transform images (M×C×H×W, any numeric dtype); random draws come from rng."""
        x = images.astype(np.float32)
        num, _, height, width = x.shape
        aug_rng = self.aug_rng or rng
        if self.aug is not None:
            x = self._geometric(x, aug_rng)
        mean = self.mean
        size = self.crop_size
        if size:
            if self.train:
                oy = rng.integers(0, height - size + 1, num)
                ox = rng.integers(0, width - size + 1, num)
            else:
                oy = np.full(num, (height - size) // 2)
                ox = np.full(num, (width - size) // 2)
            x = _crop(x, oy, ox, size, size)
            if mean is not None and mean.shape[1:] != (1, 1):
                mean = _crop(np.broadcast_to(mean, (num,) + mean.shape), oy, ox, size, size)
        if mean is not None:
            x -= mean
        if self.scale != 1:
            x *= np.float32(self.scale)
        if self.mirror:
            flip = rng.random(num) < 0.5
            x[flip] = x[flip, :, :, ::-1]
        if self.aug is not None:
            self._photometric(x, aug_rng)
        return x

    def _geometric(self, x, rng):
        num, _, height, width = x.shape
        pad = self.aug.crop_pad
        if pad:
            padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
            x = _crop(padded, rng.integers(0, 2 * pad + 1, num), rng.integers(0, 2 * pad + 1, num),
                      height, width)
        if self.aug.rotation or self.aug.shear or self.aug.zoom or self.aug.translation:
            warped = np.empty_like(x)
            affine_bilinear(np.ascontiguousarray(x), affine_maps(self.aug, num, rng), warped)
            x = warped
        return x

    def _photometric(self, x, rng):
        num = len(x)
        if self.aug.contrast:
            c = self.aug.contrast
            x *= rng.uniform(1 - c, 1 + c, num).astype(np.float32)[:, None, None, None]
        if self.aug.brightness:
            b = self.aug.brightness
            x += rng.uniform(-b, b, num).astype(np.float32)[:, None, None, None]
