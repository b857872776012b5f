"""A trained net applied to image files: encodings (`layerforge encode`), nearest-centroid
classes (`classify`) and same/different verdicts for pairs (`verify`).

Images are read as the net's input wants them: grayscale for 1 channel, RGB for 3 (as
`layerforge data images` stores them), resized to the input's height × width (unless the
net's transform crops, then they are used at their own size), then preprocessed as the net
says: by its Input layer's transform_param, else its Data layer's, else scaled by `scale`.
"""
import csv
from pathlib import Path

import numpy as np

from layerforge import io
from layerforge.data import DatasetError
from layerforge.data.store import IMAGE_SUFFIXES
from layerforge.net import Net, NetError
from layerforge.tools.centroids import decode_layers
from layerforge.tools.oneshot import input_transform, net_encoder


def image_files(paths):
    """The image files of `paths`: files as given, folders searched recursively (sorted)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise DatasetError(f"{path}: no PNG or JPEG images in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DatasetError(f"{path}: no such image file or folder")
    return files


def read_images(files, size=None, gray=False):
    """N×C×H×W uint8 pixels of image files, grayscale or RGB, resized to size=(H, W) if given."""
    from PIL import Image

    arrays = []
    for path in files:
        try:
            with Image.open(path) as image:
                image = image.convert("L" if gray else "RGB")
                if size is not None and image.size != (size[1], size[0]):
                    image = image.resize((size[1], size[0]), Image.BILINEAR)
                pixels = np.asarray(image)
        except OSError as err:
            raise DatasetError(f"{path}: cannot read the image: {err}") from err
        arrays.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
    if len({a.shape for a in arrays}) > 1:
        raise DatasetError(f"the images have different sizes ({files[0]} is {arrays[0].shape}); "
                           f"the net's transform crops, so give images of one size")
    return np.stack(arrays)


class ImageEncoder:
    """A trained net in phase RUN that turns image files into the rows of one of its blobs."""

    def __init__(self, model, weights, input="data", scale=0.00390625):
        self.net = Net(model, "RUN", weights=weights)
        self.param, self.input, self.scale = io.read_net(model), input, scale
        if input not in self.net.inputs:
            raise NetError(f"{model}: no Input blob '{input}' in phase RUN to feed the images to "
                           f"(inputs: {', '.join(self.net.inputs) or 'none'})")
        self.shape = self.net.blobs[input].shape[1:]
        if len(self.shape) != 3 or self.shape[0] not in (1, 3):
            raise NetError(f"{model}: input '{input}' is {self.shape} per item; images need "
                           f"1×H×W (grayscale) or 3×H×W (RGB)")
        crops = any(layer.transform_param.crop_size for layer in self.param.layer)
        self.size = None if crops else self.shape[1:]
        self.how = None

    def read(self, paths):
        """(image files, N×C×H×W pixels) of image files and folders."""
        files = image_files(paths)
        return files, read_images(files, self.size, gray=self.shape[0] == 1)

    def encode(self, images, blob="feat"):
        """N×D rows of `blob` for raw images (float64)."""
        transform, item_shape, self.how = input_transform(self.param, self.scale, images.shape[1:], self.input)
        if tuple(item_shape) != tuple(self.shape):
            raise NetError(f"the images are {'x'.join(map(str, item_shape))} after the transform but the "
                           f"net's input '{self.input}' is {'x'.join(map(str, self.shape))} per item")
        return np.asarray(net_encoder(self.net, blob, self.input, transform)(images), np.float64)

    def decode_top(self):
        """The top of the net's first Decode layer: squared distances to each class centroid."""
        layer, _ = decode_layers(self.net)[0]
        return self.net.top_names[layer.name][0]

    def centroid_spacing(self):
        """The smallest distance between two of the centroids of the net's first Decode layer."""
        layer, _ = decode_layers(self.net)[0]
        if getattr(layer, "knn", False) or len(layer.blobs) < 3:
            raise NetError(f"Decode layer '{layer.name}' keeps no class centroids; pass --threshold")
        centroids = layer.blobs[0].data[layer.blobs[2].data.reshape(-1) > 0].astype(np.float64)
        if len(centroids) < 2:
            raise NetError(f"Decode layer '{layer.name}' has {len(centroids)} known class centroids in "
                           f"the weights (run `layerforge centroids` first) or pass --threshold")
        gaps = np.sqrt(((centroids[:, None] - centroids[None]) ** 2).sum(-1))
        return float(gaps[~np.eye(len(centroids), dtype=bool)].min())


def check_output(path):
    """`path` as a Path when it names a file save_encodings can write (.npz or .csv)."""
    path = Path(path)
    if path.suffix not in (".npz", ".csv"):
        raise DatasetError(f"{path}: the output must end in .npz or .csv")
    return path


def save_encodings(path, files, encodings):
    """Write encodings to .npz (arrays `images`, `encodings`) or .csv (image, e0, e1, ...)."""
    path = check_output(path)
    names = [str(f) for f in files]
    if path.suffix == ".npz":
        np.savez(path, images=np.array(names), encodings=encodings)
    else:
        with open(path, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["image"] + [f"e{i}" for i in range(encodings.shape[1])])
            writer.writerows([name, *(f"{v:.9g}" for v in row)] for name, row in zip(names, encodings))
    return path


def class_names(path, count):
    """Names of classes 0..count-1: the lines of a labels.txt, or the class numbers."""
    if path is None:
        return [str(i) for i in range(count)]
    names = io.read_text_file(path).splitlines()
    if len(names) < count:
        raise DatasetError(f"{path}: {len(names)} class names for {count} classes")
    return names
