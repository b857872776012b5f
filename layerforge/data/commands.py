"""`layerforge data mnist|images`: build LMDB (or, with --backend leveldb, LevelDB) datasets."""
import re
import sys

from layerforge.cli import command
from layerforge.data.idx import build_mnist_lmdbs
from layerforge.data.store import BACKENDS, build_image_lmdb


def _size(text):
    match = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not match or 0 in (int(match[1]), int(match[2])):
        raise ValueError(text)
    return int(match[1]), int(match[2])


_size.__name__ = "HxW size"  # argparse names the type in its error message


def _digits(text):
    digits = [int(d) for d in text.split(",")]   # a ValueError is argparse's "invalid ... value"
    if not set(digits) <= set(range(10)):
        raise ValueError(text)
    return digits


_digits.__name__ = "digit list (0-9, comma-separated)"


def _mnist_arguments(p):
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--from", dest="idx_dir", metavar="IDX_DIR",
                   help="folder with the four IDX .gz files (default: $LAYERFORGE_MNIST, else download)")
    p.add_argument("--classes", type=_digits, metavar="LIST",
                   help="keep only these digits, e.g. 0,1,2,3,4 (default: all ten)")
    _backend_option(p)


def _backend_option(p):
    p.add_argument("--backend", choices=BACKENDS, default="lmdb",
                   help="database kind (default: lmdb); the folder names end in _lmdb or _leveldb")


@command("data mnist", _mnist_arguments,
         help="MNIST IDX files -> DIR/mnist_train_lmdb, DIR/mnist_test_lmdb")
def run_mnist(args):
    train, test = build_mnist_lmdbs(args.out, args.idx_dir, classes=args.classes, backend=args.backend)
    print(f"wrote {train} and {test}")
    return 0


def _images_arguments(p):
    p.add_argument("root", metavar="ROOT", help="folder with one sub-folder of images per class")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--resize", metavar="HxW", type=_size, help="resize every image to H×W")
    p.add_argument("--gray", action="store_true", help="store one grayscale channel")
    p.add_argument("--shuffle", action="store_true", help="store records in a seeded random order")
    _backend_option(p)


@command("data images", _images_arguments,
         help="ROOT/<class>/<image> -> DIR/images_lmdb and DIR/labels.txt")
def run_images(args):
    path = build_image_lmdb(args.root, args.out, args.resize, args.gray, args.shuffle,
                            progress=sys.stderr.isatty(), backend=args.backend)
    print(f"wrote {path} and {path.parent / 'labels.txt'}")
    return 0
