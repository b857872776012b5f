"""Class groups (e.g. Omniglot's alphabets): which group each class label belongs to.

A dataset folder may hold `labels.txt`, one line per class: `<label> <group>/<name>`
(for Omniglot `17 Greek/character05`). Samplers use the groups to draw the hard
"different" partners from the same group as the anchor.
"""
import os

import numpy as np

from layerforge.data import DatasetError

LABELS_FILE = "labels.txt"


def labels_file(source):
    """`labels.txt` inside the LMDB folder `source`, else beside it; None when neither exists."""
    for folder in (source, os.path.dirname(os.path.abspath(source))):
        path = os.path.join(folder, LABELS_FILE)
        if os.path.isfile(path):
            return path
    return None


def read_class_names(path):
    """{label: "group/name"} from a labels.txt file."""
    names = {}
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            label, _, name = line.strip().partition(" ")
            try:
                names[int(label)] = name.strip()
            except ValueError:
                raise DatasetError(f"{path}:{number}: expected '<label> <group>/<name>', "
                                   f"got {line.strip()!r}") from None
    return names


def class_groups(source):
    """Array mapping class label -> group index (-1 for labels not listed), or None when the
    dataset records no groups."""
    path = labels_file(source)
    if path is None:
        return None
    names = read_class_names(path)
    groups = sorted({name.partition("/")[0] for name in names.values()})
    index = {group: i for i, group in enumerate(groups)}
    table = np.full(max(names) + 1 if names else 0, -1, np.int64)
    for label, name in names.items():
        table[label] = index[name.partition("/")[0]]
    return table
