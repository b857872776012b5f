"""`layerforge data mnist|images|omniglot`: build LMDB (or, with --backend leveldb, LevelDB) datasets."""
import re
import sys

from layerforge.cli import command
from layerforge.data.idx import build_mnist_lmdbs
from layerforge.data.omniglot import build_omniglot_lmdb
from layerforge.data.store import BACKENDS, build_image_lmdb


def _size(text):
    match = re.fullmatch(r"(\d+)[xX](\d+)", text)
    if not match or 0 in (int(match[1]), int(match[2])):
        raise ValueError(text)
    return int(match[1]), int(match[2])


_size.__name__ = "HxW size"  # argparse names the type in its error message


def _names(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(text)
    return names


_names.__name__ = "comma-separated list"


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


def _omniglot_arguments(p):
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--from", dest="zip_dir", metavar="ZIPDIR",
                   help="folder of Omniglot .zip files, or one zip (default: $LAYERFORGE_OMNIGLOT)")
    p.add_argument("--resize", metavar="HxW", type=_size, help="resize every image to H×W (default: 105×105)")
    p.add_argument("--alphabets", metavar="A,B,...", type=_names,
                   help="keep only these alphabets, e.g. Greek,Latin (default: all in the zips)")


@command("data omniglot", _omniglot_arguments,
         help="Omniglot zips -> DIR/omniglot_lmdb and DIR/labels.txt (one class per character)",
         description="Read Lake's Omniglot zips (images_background*.zip, images_evaluation*.zip) "
                     "directly: one class per character, labels numbered in sorted alphabet/character "
                     "order, images inverted (strokes 255 on 0) and optionally resized. DIR/labels.txt "
                     "lists '<label> <alphabet>/<character>', which the Data layer's "
                     "different_within_group and one-shot trials use to stay within an alphabet.")
def run_omniglot(args):
    path, data = build_omniglot_lmdb(args.out, args.zip_dir, args.resize, args.alphabets,
                                     progress=sys.stderr.isatty())
    alphabets = sorted(set(data.alphabets))
    print(f"wrote {path} ({len(data.labels)} images of {len(data.names)} characters, "
          f"{'x'.join(map(str, data.images.shape[2:]))}, alphabets {', '.join(alphabets)}) "
          f"and {path.parent / 'labels.txt'}")
    return 0
