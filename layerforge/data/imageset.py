"""Caffe's convert_imageset: a list file of `path label` lines -> a database of Datum records."""
from pathlib import Path

import numpy as np

from layerforge.data.errors import DatasetError
from layerforge.data.store import image_datums, write_db


def read_list_file(path, root=None):
    """[(image path, label)] of a list file: one `path label` per line, split at the last space
    (so paths may hold spaces) as Caffe does; relative paths are under `root`, else beside the
    list file. Blank lines are skipped."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read the list file: {err}") from None
    files = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, _, label = line.rstrip().rpartition(" ")
        try:
            files.append((root / name, int(label)))
        except ValueError:
            raise DatasetError(f"{path}:{number}: expected `path label` with an integer label, "
                               f"got {line.strip()!r}") from None
    if not files:
        raise DatasetError(f"{path}: the list file names no images")
    return files


def convert_imageset(list_file, db, root=None, resize=None, gray=False, shuffle=False,
                     encoded=None, backend="lmdb", progress=False):
    """Write the images a list file names, with its labels, to the database `db`; returns its
    path. `shuffle` writes them in a seeded random order (Caffe shuffles the lines too)."""
    files = read_list_file(list_file, root)
    if shuffle:
        files = [files[i] for i in np.random.default_rng(0).permutation(len(files))]
    return write_db(db, image_datums(files, resize, gray, encoded, progress), backend)
