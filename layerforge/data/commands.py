"""`layerforge data mnist|images|omniglot`: build LMDB (or, with --backend leveldb, LevelDB)
datasets; Caffe's `convert_imageset` and `compute_image_mean` tools."""
import re
import sys
from pathlib import Path

import numpy as np

from layerforge.cli import command
from layerforge.data.errors import DatasetError
from layerforge.data.idx import build_mnist_lmdbs
from layerforge.data.imageset import convert_imageset
from layerforge.data.omniglot import build_omniglot_lmdb
from layerforge.data.store import BACKENDS, build_image_lmdb, read_db
from layerforge.data.transform import compute_image_mean, write_mean_file


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
    p.add_argument("root", metavar="ROOT",
                   help="folder with one sub-folder of images per class, or a list file of "
                        "`path label` lines (as convert_imageset reads)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--root", dest="image_root", metavar="DIR",
                   help="with a list file: the folder its paths are relative to (default: the list file's)")
    _image_options(p)
    _backend_option(p)


def _image_options(p):
    p.add_argument("--resize", metavar="HxW", type=_size, help="resize every image to H×W")
    p.add_argument("--gray", action="store_true", help="store one grayscale channel")
    p.add_argument("--shuffle", action="store_true", help="store records in a seeded random order")


@command("data images", _images_arguments,
         help="ROOT/<class>/<image> (or a list file) -> DIR/images_lmdb (and DIR/labels.txt)")
def run_images(args):
    if Path(args.root).is_file():
        path = convert_imageset(args.root, Path(args.out) / f"images_{args.backend}", args.image_root,
                                args.resize, args.gray, args.shuffle, backend=args.backend,
                                progress=sys.stderr.isatty())
        print(f"wrote {path}")
        return 0
    path = build_image_lmdb(args.root, args.out, args.resize, args.gray, args.shuffle,
                            progress=sys.stderr.isatty(), backend=args.backend)
    print(f"wrote {path} and {path.parent / 'labels.txt'}")
    return 0


def _convert_imageset_arguments(p):
    p.add_argument("root", metavar="ROOTFOLDER", help="folder the list file's paths are relative to")
    p.add_argument("list_file", metavar="LISTFILE", help="text file of `path label` lines")
    p.add_argument("db", metavar="DB_NAME", help="output database folder")
    _image_options(p)
    p.add_argument("--resize_height", type=int, default=0, metavar="H", help="Caffe's spelling: resize height")
    p.add_argument("--resize_width", type=int, default=0, metavar="W", help="Caffe's spelling: resize width")
    p.add_argument("--encoded", action="store_true", help="store the images compressed (Datum.encoded)")
    p.add_argument("--encode_type", choices=("png", "jpg"), default="png",
                   help="compression of --encoded images (default: png)")
    _backend_option(p)


@command("convert_imageset", _convert_imageset_arguments,
         help="Caffe's convert_imageset: a list file of images and labels -> a database", description=(
    "Read the images a list file names (`path label` per line, paths relative to ROOTFOLDER) "
    "and write them with their labels as Datum records, in list order (or shuffled with a "
    "fixed seed), grayscale or RGB, optionally resized and compressed. Caffe's flags are "
    "accepted with one dash too (-gray -shuffle -encoded -encode_type -resize_height "
    "-resize_width -backend). Colour images are stored RGB, as `data images` stores them "
    "(Caffe's OpenCV stores BGR)."))
def run_convert_imageset(args):
    resize = args.resize
    if args.resize_height or args.resize_width:
        if resize or not (args.resize_height and args.resize_width):
            raise DatasetError("give --resize HxW, or both --resize_height and --resize_width")
        resize = (args.resize_height, args.resize_width)
    path = convert_imageset(args.list_file, args.db, args.root, resize, args.gray, args.shuffle,
                            args.encode_type if args.encoded else None, args.backend,
                            progress=sys.stderr.isatty())
    print(f"wrote {path}")
    return 0


def _mean_arguments(p):
    p.add_argument("db", metavar="INPUT_DB", help="database of Datum records")
    p.add_argument("out", metavar="OUTPUT_FILE", help="mean image to write, e.g. mean.binaryproto")
    _backend_option(p)


@command("compute_image_mean", _mean_arguments,
         help="Caffe's compute_image_mean: the mean image of a database -> mean.binaryproto",
         description=(
    "Average every record of the database pixel by pixel and write the C×H×W mean as a binary "
    "BlobProto, which transform_param { mean_file } reads; print each channel's mean (the "
    "values transform_param { mean_value } takes)."))
def run_compute_image_mean(args):
    images, _ = read_db(args.db, args.backend)
    mean = compute_image_mean(images)
    write_mean_file(mean, args.out)
    for channel, value in enumerate(mean.reshape(len(mean), -1).mean(axis=1, dtype=np.float64)):
        print(f"mean_value channel [{channel}]: {value:.6g}")
    print(f"wrote {args.out} (mean of {len(images)} images, {'x'.join(map(str, mean.shape))})")
    return 0


def _omniglot_arguments(p):
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--from", dest="zip_dir", metavar="ZIPDIR",
                   help="folder of Omniglot .zip files, or one zip (default: $LAYERFORGE_OMNIGLOT)")
    p.add_argument("--resize", metavar="HxW", type=_size, help="resize every image to H×W (default: 105×105)")
    p.add_argument("--alphabets", metavar="A,B,...", type=_names,
                   help="keep only these alphabets, e.g. Greek,Latin (default: all in the zips)")
    p.add_argument("--rotations", type=int, choices=(1, 2, 4), default=1,
                   help="1, 2 or 4: also write each character turned by 180° (2) or by 90°, 180° "
                        "and 270° (4) as new classes of its alphabet, named <character>@<degrees> "
                        "(default: 1, as drawn)")


@command("data omniglot", _omniglot_arguments,
         help="Omniglot zips -> DIR/omniglot_lmdb and DIR/labels.txt (one class per character)",
         description="Read Lake's Omniglot zips (images_background*.zip, images_evaluation*.zip) "
                     "directly: one class per character, labels numbered in sorted alphabet/character "
                     "order, images inverted (strokes 255 on 0) and optionally resized. DIR/labels.txt "
                     "lists '<label> <alphabet>/<character>', which the Data layer's "
                     "different_within_group and one-shot trials use to stay within an alphabet.")
def run_omniglot(args):
    path, data = build_omniglot_lmdb(args.out, args.zip_dir, args.resize, args.alphabets,
                                     progress=sys.stderr.isatty(), rotations=args.rotations)
    alphabets = sorted(set(data.alphabets))
    print(f"wrote {path} ({len(data.labels)} images of {len(data.names)} characters, "
          f"{'x'.join(map(str, data.images.shape[2:]))}, alphabets {', '.join(alphabets)}) "
          f"and {path.parent / 'labels.txt'}")
    return 0
