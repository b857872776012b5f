"""pycaffe's caffe.io: BlobProto / Datum <-> numpy, image loading and resizing (Pillow), and
the Transformer that turns H×W×K images into a net's K×H×W inputs.

Resizing is bilinear through Pillow, channel by channel, where pycaffe used scikit-image:
values agree to interpolation rounding, not bit for bit.
"""
import numpy as np
from PIL import Image

from layerforge.proto import layerforge_pb2 as caffe_pb2

# ---------------------------------------------------------------- proto <-> array


def blobproto_to_array(blob, return_diff=False):
    """The data (or diff) of a BlobProto, in its shape (or legacy num/channels/height/width)."""
    values = np.array(blob.diff if return_diff else blob.data)
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        return values.reshape(blob.num, blob.channels, blob.height, blob.width)
    return values.reshape(tuple(blob.shape.dim))


def array_to_blobproto(arr, diff=None):
    """BlobProto with arr's shape and values (and `diff`, same shape, if given)."""
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(arr.shape)
    blob.data.extend(np.asarray(arr, float).flat)
    if diff is not None:
        blob.diff.extend(np.asarray(diff, float).flat)
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    """Serialized BlobProtoVector of the arrays."""
    return caffe_pb2.BlobProtoVector(blobs=[array_to_blobproto(a) for a in arraylist]).SerializeToString()


def blobprotovector_str_to_arraylist(serialized):
    vector = caffe_pb2.BlobProtoVector()
    vector.ParseFromString(serialized)
    return [blobproto_to_array(blob) for blob in vector.blobs]


def array_to_datum(arr, label=None):
    """Datum of a C×H×W array: uint8 as bytes in `data`, anything else as `float_data`."""
    if arr.ndim != 3:
        raise ValueError(f"array_to_datum needs a 3-D C×H×W array, got shape {arr.shape}")
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(np.asarray(arr, float).flat)
    if label is not None:
        datum.label = label
    return datum


def datum_to_array(datum):
    """C×H×W array of a Datum (uint8 from `data`, float from `float_data`); the label is datum.label."""
    shape = (datum.channels, datum.height, datum.width)
    if len(datum.data):
        return np.frombuffer(datum.data, np.uint8).reshape(shape)
    return np.array(datum.float_data, float).reshape(shape)


# ---------------------------------------------------------------- images


def load_image(filename, color=True):
    """H×W×3 RGB (or H×W×1 grey with color=False) float32 image in [0, 1]."""
    with Image.open(filename) as image:
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            pixels = np.asarray(image, np.float32) / (65535.0 if image.mode.startswith("I;16") else 2 ** 31 - 1)
            image = Image.fromarray(np.clip(pixels * 255, 0, 255).astype(np.uint8))
        pixels = np.asarray(image.convert("RGB" if color else "L"), np.float32) / 255.0
    return pixels if color else pixels[:, :, np.newaxis]


def resize_image(im, new_dims, interp_order=1):
    """H×W×K image resized to new_dims (height, width): bilinear (interp_order 1) or nearest (0)."""
    height, width = (int(d) for d in new_dims)
    im = np.asarray(im, np.float32)
    resample = Image.Resampling.NEAREST if interp_order == 0 else Image.Resampling.BILINEAR
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(im[:, :, k]), mode="F")
                           .resize((width, height), resample)) for k in range(im.shape[-1])]
    return np.stack(channels, axis=-1).astype(np.float32)


def oversample(images, crop_dims):
    """10 crops per image: the four corners and the centre, then their mirror images."""
    shape = np.array(images[0].shape)
    crop_dims = np.array(crop_dims)
    corners = [(i, j) for i in (0, shape[0] - crop_dims[0]) for j in (0, shape[1] - crop_dims[1])]
    centre = (shape[:2] / 2.0 - crop_dims / 2.0).astype(int)
    boxes = [(i, j, i + crop_dims[0], j + crop_dims[1]) for i, j in corners + [tuple(centre)]]
    crops = np.empty((10 * len(images), crop_dims[0], crop_dims[1], shape[-1]), np.float32)
    index = 0
    for im in images:
        for top, left, bottom, right in boxes:
            crops[index] = im[top:bottom, left:right, :]
            index += 1
        crops[index:index + 5] = crops[index - 5:index, :, ::-1, :]
        index += 5
    return crops


# ---------------------------------------------------------------- Transformer


class Transformer:
    """Prepare H×W×K images for the inputs of a net. `inputs` maps input names to blob shapes
    (N, K, H, W). preprocess: to float32, resize to H×W, transpose, swap channels, × raw_scale,
    − mean, × input_scale; deprocess undoes it."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.transpose, self.channel_swap, self.raw_scale = {}, {}, {}
        self.mean, self.input_scale = {}, {}

    def _check_input(self, in_):
        if in_ not in self.inputs:
            raise KeyError(f"{in_} is not one of the net inputs: {list(self.inputs)}")

    def preprocess(self, in_, data):
        self._check_input(in_)
        caffe_in = np.asarray(data).astype(np.float32, copy=True)
        in_dims = tuple(self.inputs[in_][2:])
        if caffe_in.shape[:2] != in_dims:
            caffe_in = resize_image(caffe_in, in_dims)
        if in_ in self.transpose:
            caffe_in = caffe_in.transpose(self.transpose[in_])
        if in_ in self.channel_swap:
            caffe_in = caffe_in[list(self.channel_swap[in_]), :, :]
        if in_ in self.raw_scale:
            caffe_in *= self.raw_scale[in_]
        if in_ in self.mean:
            caffe_in -= self.mean[in_]
        if in_ in self.input_scale:
            caffe_in *= self.input_scale[in_]
        return caffe_in

    def deprocess(self, in_, data):
        self._check_input(in_)
        image = np.array(data, copy=True).squeeze()
        if in_ in self.input_scale:
            image /= self.input_scale[in_]
        if in_ in self.mean:
            image += self.mean[in_]
        if in_ in self.raw_scale:
            image /= self.raw_scale[in_]
        if in_ in self.channel_swap:
            image = image[np.argsort(self.channel_swap[in_]), :, :]
        if in_ in self.transpose:
            image = image.transpose(np.argsort(self.transpose[in_]))
        return image

    def set_transpose(self, in_, order):
        """Order of the image's axes for the net, e.g. (2, 0, 1) turns H×W×K into K×H×W."""
        self._check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ValueError(f"transpose order {order} needs {len(self.inputs[in_]) - 1} axes")
        self.transpose[in_] = order

    def set_channel_swap(self, in_, order):
        """Channel order after transposing, e.g. (2, 1, 0) for RGB -> BGR."""
        self._check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise ValueError(f"channel swap {order} needs {self.inputs[in_][1]} channels")
        self.channel_swap[in_] = order

    def set_raw_scale(self, in_, scale):
        """Scale applied before the mean, e.g. 255 for models trained on [0, 255] pixels."""
        self._check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """Mean to subtract: per channel (K values) or per pixel (K×H×W, resized if needed)."""
        self._check_input(in_)
        mean = np.asarray(mean)
        if mean.ndim == 1:
            if mean.shape[0] != self.inputs[in_][1]:
                raise ValueError(f"mean has {mean.shape[0]} channels, the input {self.inputs[in_][1]}")
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            if mean.ndim == 2:
                mean = mean[np.newaxis]
            if mean.ndim != 3:
                raise ValueError(f"mean of shape {mean.shape}: give K values or a K×H×W array")
            if mean.shape != tuple(self.inputs[in_][1:]):
                mean = resize_image(mean.transpose(1, 2, 0), self.inputs[in_][2:]).transpose(2, 0, 1)
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        """Scale applied after the mean."""
        self._check_input(in_)
        self.input_scale[in_] = scale
