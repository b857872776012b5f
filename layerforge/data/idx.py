"""MNIST in IDX format: read (with md5 check and a download fallback) and convert to LMDB.

Downloads and md5 checks go through pooch (retrieve to a temporary file, verify, rename)."""
import gzip
import shutil
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
from tqdm import tqdm

from layerforge import config
from layerforge.data.errors import DatasetError
from layerforge.data.store import count_records, datums, read_db, write_db

MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
           "http://yann.lecun.com/exdb/mnist/")

# name -> (md5 of the .gz, md5 of the unzipped file, IDX magic number)
MNIST_FILES = {
    "train-images-idx3-ubyte": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb", 0x803),
    "train-labels-idx1-ubyte": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624", 0x801),
    "t10k-images-idx3-ubyte": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea", 0x803),
    "t10k-labels-idx1-ubyte": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637", 0x801),
}
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000)}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def md5sum(path):
    import pooch

    return pooch.file_hash(str(path), alg="md5")


def verify_md5(path, expected):
    got = md5sum(path)
    if got != expected:
        raise DatasetError(f"{path}: md5 mismatch (expected {expected}, got {got}); the file is "
                           f"corrupt or not the original MNIST file: delete it and fetch it again")


def read_idx(path, magic=None):
    """The array stored in an IDX file (gzip-compressed when the name ends in .gz)."""
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path}: cannot read IDX file: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    found = int.from_bytes(raw[:4], "big")
    if magic is not None and found != magic:
        raise DatasetError(f"{path}: wrong IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(f"{path}: IDX file is {len(raw)} bytes, its header {shape} says {expected} "
                           f"(truncated or corrupt)")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _download(url, output_file, pooch_instance):
    """pooch downloader: http(s) and ftp through pooch's own, file:// (a local mirror) copied."""
    import pooch

    if url.startswith("file:"):
        source = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
        if hasattr(output_file, "write"):
            with open(source, "rb") as handle:
                shutil.copyfileobj(handle, output_file)
        else:
            shutil.copyfile(source, output_file)
        return
    pooch.downloaders.choose_downloader(url, progressbar=sys.stderr.isatty())(url, output_file, pooch_instance)


def download_mnist(dest_dir, mirrors=MIRRORS):
    """Download the four .gz files into dest_dir (verified by md5), trying each mirror in turn."""
    import pooch

    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for name, (md5_gz, _, _) in MNIST_FILES.items():
        failures = []
        for mirror in mirrors:
            url = f"{mirror.rstrip('/')}/{name}.gz"
            try:
                pooch.retrieve(url, f"md5:{md5_gz}", fname=f"{name}.gz", path=dest_dir, downloader=_download)
                break
            except Exception as err:   # network, missing file or md5 mismatch: try the next mirror
                failures.append(f"{url}: {err}")
        else:
            raise DatasetError(f"cannot download {name}.gz:\n  " + "\n  ".join(failures) +
                               "\nDownload the MNIST IDX files by hand and pass their folder with "
                               "--from DIR or LAYERFORGE_MNIST=DIR")
    return dest_dir


def find_mnist_files(idx_dir):
    """Path of each MNIST file in idx_dir (.gz or unzipped), verified by md5."""
    idx_dir = Path(idx_dir)
    paths = {}
    for name, (md5_gz, md5_raw, _) in MNIST_FILES.items():
        for path, md5 in ((idx_dir / f"{name}.gz", md5_gz), (idx_dir / name, md5_raw)):
            if path.exists():
                verify_md5(path, md5)
                paths[name] = path
                break
        else:
            raise DatasetError(f"{idx_dir}: missing MNIST file {name}.gz (or {name})")
    return paths


def load_mnist(idx_dir):
    """{"train": (images N×1×28×28 uint8, labels N), "test": (...)} from verified IDX files."""
    paths = find_mnist_files(idx_dir)
    splits = {}
    for split, (images_name, labels_name, count) in SPLITS.items():
        images = read_idx(paths[images_name], MNIST_FILES[images_name][2])
        labels = read_idx(paths[labels_name], MNIST_FILES[labels_name][2])
        if images.shape != (count, 28, 28) or labels.shape != (count,):
            raise DatasetError(f"{paths[images_name]}, {paths[labels_name]}: expected {count} images "
                               f"of 28x28 and {count} labels, got {images.shape} and {labels.shape}")
        splits[split] = (images[:, None], labels)
    return splits


def build_mnist_lmdbs(out_dir, idx_dir=None, mirrors=MIRRORS, progress=None, classes=None, backend="lmdb"):
    """Write out_dir/mnist_train_lmdb and out_dir/mnist_test_lmdb; return their paths.
    With backend "leveldb": LevelDBs out_dir/mnist_{train,test}_leveldb, as Caffe's
    convert_mnist_data names them.

    The IDX files come from idx_dir, else $LAYERFORGE_MNIST, else a download into
    out_dir/raw. LMDBs that already exist and hold every record are kept as they are.
    `classes` (digits) keeps only the records of those digits, in MNIST's order (e.g. 0-4
    to train, 5-9 for a one-shot test); existing LMDBs are then kept only when they hold
    exactly those records.
    """
    out_dir = Path(out_dir)
    targets = {split: out_dir / f"mnist_{split}_{backend}" for split in SPLITS}
    if classes is not None:
        classes = sorted(set(int(c) for c in classes))
        if not classes or not set(classes) <= set(range(10)):
            raise DatasetError(f"MNIST classes are the digits 0-9, got {classes or 'none'}")
    elif all(count_records(targets[s], backend) == SPLITS[s][2] and _decodes(targets[s], backend)
             for s in SPLITS):
        return targets["train"], targets["test"]
    idx_dir = idx_dir or config.mnist_folder() or download_mnist(out_dir / "raw", mirrors)
    splits = load_mnist(idx_dir)  # everything is verified before any LMDB is touched
    show = sys.stderr.isatty() if progress is None else progress
    for split, (images, labels) in splits.items():
        if classes is not None:
            keep = np.isin(labels, classes)
            images, labels = images[keep], labels[keep]
        if _holds(targets[split], images, labels, classes is not None, backend):
            continue
        bar = tqdm(total=len(labels), desc=f"mnist {split}", unit="img", disable=not show)
        with bar:
            write_db(targets[split], datums(images, labels, bar.update), backend)
    return targets["train"], targets["test"]


def _decodes(path, backend):
    """Do all records of the database at path decode (a damaged one is rebuilt)?"""
    try:
        read_db(path, backend)
    except DatasetError:
        return False
    return True


def _holds(path, images, labels, exact, backend):
    """Does the database at path hold these records: as many of them, or (exact) the very records?"""
    if count_records(path, backend) != len(labels):
        return False
    if not exact:
        return _decodes(path, backend)
    try:
        stored_images, stored_labels = read_db(path, backend)
    except DatasetError:
        return False
    return np.array_equal(stored_labels, labels) and np.array_equal(stored_images, images)
