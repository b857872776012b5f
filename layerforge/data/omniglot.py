"""Omniglot read straight from Lake's zips: one class per character, grouped by alphabet.

A zip holds `<root>/<alphabet>/<characterNN>/<id>_<drawer>.png` (105×105, 1 bit, black
strokes on white). Images are inverted on reading (strokes 255, background 0) so that the
zero fill of geometric augmentation is background, and resized with Pillow's antialiased
bilinear filter when a size is given. Characters found in several zips (the small
background sets share Greek and Latin) are read once. `read_image` is the one place that
turns a PNG into network pixels, for the LMDB builder and for one-shot trials alike.
"""
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from layerforge.data import DatasetError
from layerforge.data.groups import LABELS_FILE
from layerforge.data.store import datums, write_lmdb

ENV = "LAYERFORGE_OMNIGLOT"
LMDB_NAME = "omniglot_lmdb"
_MEMBER = re.compile(r"(?:.*/)?([^/]+)/([^/]+)/([^/]+)_(\d+)\.png")


def read_image(data, size=None):
    """H×W uint8 pixels of one Omniglot PNG (bytes or a path): strokes high, resized to
    size=(H, W) when given."""
    from PIL import Image
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        image = image.convert("L")
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        return 255 - np.asarray(image)


def zip_files(source=None):
    """The Omniglot zips of `source`: one .zip file, or every .zip in a folder (default
    $LAYERFORGE_OMNIGLOT)."""
    source = source or os.environ.get(ENV)
    if not source:
        raise DatasetError(f"no Omniglot zips given: pass --from ZIPDIR or set {ENV} to the folder "
                           f"holding images_background*.zip")
    path = Path(source).expanduser()
    files = [path] if path.is_file() else sorted(path.glob("*.zip")) if path.is_dir() else []
    if not files:
        raise DatasetError(f"{path}: no Omniglot .zip files there (expected images_background*.zip)")
    return files


@dataclass
class Omniglot:
    """Images N×1×H×W uint8, labels (class index per image), drawers (1-20 per image) and
    names[label] = "alphabet/character"."""
    images: np.ndarray
    labels: np.ndarray
    drawers: np.ndarray
    names: list

    @property
    def alphabets(self):
        """Alphabet of each class, in label order."""
        return [name.partition("/")[0] for name in self.names]

    def with_rotations(self, turns):
        """This set plus each character turned by 360°/turns, 2·360°/turns, … as new classes
        of the same alphabet, named "alphabet/character@90" and so on (turns is 1, 2 or 4):
        the usual way to multiply Omniglot's few training characters (Vinyals et al., Snell
        et al.). Rotation k's labels follow on from rotation k - 1's."""
        if turns not in (1, 2, 4):
            raise DatasetError(f"rotations must be 1, 2 or 4, got {turns}")
        count, quarter_turns = len(self.names), 4 // turns
        return Omniglot(
            np.concatenate([np.rot90(self.images, k * quarter_turns, axes=(2, 3)) for k in range(turns)]),
            np.concatenate([self.labels + k * count for k in range(turns)]),
            np.tile(self.drawers, turns),
            self.names + [f"{name}@{90 * k * quarter_turns}" for k in range(1, turns) for name in self.names])


def _members(files, alphabets):
    """{(alphabet, character): {drawer: (zip path, member name)}} over all zips."""
    found = {}
    for path in files:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile) as err:
            raise DatasetError(f"{path}: cannot read the zip: {err}") from err
        for member in names:
            match = _MEMBER.fullmatch(member)
            if match and (alphabets is None or match[1] in alphabets):
                found.setdefault((match[1], match[2]), {}).setdefault(int(match[4]), (path, member))
    return found


def load_omniglot(source=None, alphabets=None, size=None, progress=False):
    """Every image of the zips (of `alphabets` only, when given), as an Omniglot record.

    Labels number the characters in sorted "alphabet/character" order; images of one class
    are in drawer order.
    """
    files = zip_files(source)
    found = _members(files, None if alphabets is None else set(alphabets))
    if alphabets is not None:
        missing = sorted(set(alphabets) - {alphabet for alphabet, _ in found})
        if missing:
            known = sorted({alphabet for alphabet, _ in _members(files, None)})
            raise DatasetError(f"{', '.join(map(str, files))}: no alphabet {', '.join(missing)} "
                               f"(alphabets there: {', '.join(known)})")
    if not found:
        raise DatasetError(f"{', '.join(map(str, files))}: no <alphabet>/<character>/<id>_<drawer>.png "
                           f"images in the zips")
    keys = sorted(found)
    entries = [(label, drawer, *found[key][drawer]) for label, key in enumerate(keys)
               for drawer in sorted(found[key])]
    archives = {path: zipfile.ZipFile(path) for path in files}
    try:
        pixels = [read_image(archives[path].read(member), size)
                  for _, _, path, member in tqdm(entries, desc="omniglot", unit="img", disable=not progress)]
    finally:
        for archive in archives.values():
            archive.close()
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        raise DatasetError(f"the Omniglot images have several sizes ({', '.join(map(str, sorted(shapes)))}); "
                           f"pass --resize HxW")
    return Omniglot(np.stack(pixels)[:, None], np.array([e[0] for e in entries], np.int64),
                    np.array([e[1] for e in entries], np.int64), [f"{a}/{c}" for a, c in keys])


def build_omniglot_lmdb(out_dir, source=None, size=None, alphabets=None, progress=False, rotations=1):
    """out_dir/omniglot_lmdb (one Datum per image, label = character) and out_dir/labels.txt
    (`<label> <alphabet>/<character>` per class, read by layerforge.data.groups). With
    rotations=4, each character turned by 90°, 180° and 270° adds a class (see
    Omniglot.with_rotations)."""
    data = load_omniglot(source, alphabets, size, progress).with_rotations(rotations)
    out_dir = Path(out_dir)
    path = write_lmdb(out_dir / LMDB_NAME, datums(data.images, data.labels))
    (out_dir / LABELS_FILE).write_text("".join(f"{label} {name}\n" for label, name in enumerate(data.names)),
                                       encoding="utf-8")
    return path, data
