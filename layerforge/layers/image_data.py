"""ImageData: batches of image files named in a list file, as Caffe's ImageDataLayer reads them."""
import os

import numpy as np

from layerforge.data import DatasetError
from layerforge.data.images import read_image, resize
from layerforge.data.transform import DataTransformer, with_legacy_fields
from layerforge.layer import Layer
from layerforge.registry import register_layer


def read_image_list(path):
    """[(file name, label)] of a list file with lines `path label` (the label after the last space)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as err:
        raise DatasetError(f"{path}: cannot read the image list: {err}") from None
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, _, label = line.rstrip().rpartition(" ")
        try:
            entries.append((name, int(label)))
        except ValueError:
            raise DatasetError(f"{path}:{number}: expected `path label`, got {line!r}") from None
    if not entries:
        raise DatasetError(f"{path}: the image list names no images")
    return entries


@register_layer("ImageData")
class ImageDataLayer(Layer):
    """Tops: data (N×C×H×W, through transform_param) and label (N).

    Images are read from `root_folder` + the listed path at every batch, in list order or,
    with `shuffle`, in a new seeded order each epoch; `rand_skip` starts at a random line
    below it. `new_height`/`new_width` resize (bilinear) every image; without them all
    images must have the first one's size. Colour images are BGR, as Caffe's OpenCV reads
    them (so Caffe's BGR mean values apply); `is_color: false` reads one grey channel.
    """

    exact_num_bottom = 0
    exact_num_top = 2
    has_backward = False

    def setup(self, bottom, top):
        ip = self.param.image_data_param
        if ip.batch_size < 1:
            raise self.error(f"image_data_param.batch_size must be at least 1, got {ip.batch_size}")
        if (ip.new_height == 0) != (ip.new_width == 0):
            raise self.error(f"image_data_param: give both new_height and new_width or neither, got "
                             f"{ip.new_height} and {ip.new_width}")
        self._rng = np.random.default_rng(int(self.rng.integers(2 ** 63)))
        try:
            self._entries = read_image_list(os.path.expanduser(ip.source))
            self._order = self._new_order()
            self._cursor = 0
            if ip.rand_skip:
                skip = int(self._rng.integers(ip.rand_skip))
                if skip >= len(self._entries):
                    raise DatasetError(f"rand_skip drew {skip}, but the list has only {len(self._entries)} images")
                self._cursor = skip
            first = self._read(self._order[self._cursor])
            self._transformer = DataTransformer(with_legacy_fields(self.param.transform_param, ip),
                                                self.phase, first.shape)
        except DatasetError as err:
            raise self.error(f"image_data_param.source {ip.source!r}: {err}") from err
        self._shape = first.shape

    def _new_order(self):
        count = len(self._entries)
        return self._rng.permutation(count) if self.param.image_data_param.shuffle else np.arange(count)

    def _read(self, index):
        ip = self.param.image_data_param
        path = ip.root_folder + self._entries[index][0]
        image = read_image(path, ip.is_color)
        if ip.new_height:
            image = resize(image, ip.new_height, ip.new_width)
        return image

    def reshape(self, bottom, top):
        batch = self.param.image_data_param.batch_size
        top[0].reshape((batch,) + self._transformer.output_shape)
        top[1].reshape((batch,))

    def forward(self, bottom, top):
        ip = self.param.image_data_param
        images, labels = [], []
        for _ in range(ip.batch_size):
            index = self._order[self._cursor]
            image = self._read(index)
            if image.shape != self._shape:
                raise self.error(f"{ip.root_folder + self._entries[index][0]} is "
                                 f"{'x'.join(map(str, image.shape))} but the first image is "
                                 f"{'x'.join(map(str, self._shape))}; set new_height and new_width")
            images.append(image)
            labels.append(self._entries[index][1])
            self._cursor += 1
            if self._cursor == len(self._entries):
                self._cursor = 0
                self._order = self._new_order()
        top[0].data[...] = self._transformer(np.stack(images), self._rng)
        top[1].data[...] = labels

    def get_state(self):
        return {"cursor": self._cursor, "order": self._order.tolist(),
                "rng": self._rng.bit_generator.state, "transform": self._transformer.get_state()}

    def set_state(self, state):
        self._cursor = state["cursor"]
        self._order = np.asarray(state["order"], np.intp)
        self._rng.bit_generator.state = state["rng"]
        self._transformer.set_state(state["transform"])
