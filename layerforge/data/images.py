"""Image files as Caffe's OpenCV-based layers see them: C×H×W uint8, colour in BGR order.

`read_image` decodes with Pillow; `resize` is bilinear with OpenCV's INTER_LINEAR pixel
mapping (pixel centres aligned, no anti-aliasing), which ImageData's new_height/new_width
and WindowData's warps use in Caffe.
"""
import numpy as np

from layerforge.data import DatasetError


def read_image(path, is_color=True):
    """C×H×W uint8 image: 3 channels BGR (is_color) or 1 grey channel."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB" if is_color else "L"))
    except (OSError, ValueError) as err:
        raise DatasetError(f"{path}: cannot read the image: {err}") from None
    return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels[:, :, ::-1].transpose(2, 0, 1))


def _axis(source, target):
    """Left indices, right indices and right weights of a bilinear resample along one axis."""
    position = (np.arange(target) + 0.5) * (source / target) - 0.5
    position = np.clip(position, 0, source - 1)
    left = np.floor(position).astype(np.intp)
    right = np.minimum(left + 1, source - 1)
    return left, right, (position - left).astype(np.float32)


def resize(image, height, width):
    """C×H×W uint8 image resized bilinearly to C×height×width (rounded back to uint8)."""
    if image.shape[1:] == (height, width):
        return image
    top, bottom, wy = _axis(image.shape[1], height)
    left, right, wx = _axis(image.shape[2], width)
    x = image.astype(np.float32)
    rows = x[:, top] * (1 - wy)[:, None] + x[:, bottom] * wy[:, None]
    out = rows[:, :, left] * (1 - wx) + rows[:, :, right] * wx
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
