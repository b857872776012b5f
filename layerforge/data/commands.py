"""`layerforge data mnist|images`: build LMDB (or, with --backend leveldb, LevelDB) datasets."""
import re
import sys

from layerforge.data.idx import build_mnist_lmdbs
from layerforge.data.store import BACKENDS, build_image_lmdb


def register(subparsers):
    """Add the `data` sub-command (with `mnist` and `images`) to an argparse subparsers object."""
    data = subparsers.add_parser("data", help="build LMDB or LevelDB datasets")
    kinds = data.add_subparsers(dest="data_command", required=True)
    mnist = kinds.add_parser("mnist", help="MNIST IDX files -> DIR/mnist_train_lmdb, DIR/mnist_test_lmdb")
    mnist.add_argument("--out", required=True, metavar="DIR", help="output folder")
    mnist.add_argument("--from", dest="idx_dir", metavar="IDX_DIR",
                       help="folder with the four IDX .gz files (default: $LAYERFORGE_MNIST, else download)")
    mnist.add_argument("--classes", type=_digits, metavar="LIST",
                       help="keep only these digits, e.g. 0,1,2,3,4 (default: all ten)")
    _backend_option(mnist)
    mnist.set_defaults(func=run_mnist)
    images = kinds.add_parser("images", help="ROOT/<class>/<image> -> DIR/images_lmdb and DIR/labels.txt")
    images.add_argument("root", metavar="ROOT", help="folder with one sub-folder of images per class")
    images.add_argument("--out", required=True, metavar="DIR", help="output folder")
    images.add_argument("--resize", metavar="HxW", type=_size, help="resize every image to H×W")
    images.add_argument("--gray", action="store_true", help="store one grayscale channel")
    images.add_argument("--shuffle", action="store_true", help="store records in a seeded random order")
    _backend_option(images)
    images.set_defaults(func=run_images)


def _backend_option(parser):
    parser.add_argument("--backend", choices=BACKENDS, default="lmdb",
                        help="database kind (default: lmdb); the name ends in _lmdb or _leveldb")


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


def run_mnist(args):
    train, test = build_mnist_lmdbs(args.out, args.idx_dir, classes=args.classes, backend=args.backend)
    print(f"wrote {train} and {test}")
    return 0


def run_images(args):
    path = build_image_lmdb(args.root, args.out, args.resize, args.gray, args.shuffle,
                            progress=sys.stderr.isatty(), backend=args.backend)
    print(f"wrote {path} and {path.parent / 'labels.txt'}")
    return 0
