import numpy as np
import pytest

from layerforge.data import DatasetError
from layerforge.data.groups import class_groups


def test_groups_from_labels_file_in_or_beside_the_lmdb(tmp_path):
    lmdb_dir = tmp_path / "train_lmdb"
    lmdb_dir.mkdir()
    assert class_groups(str(lmdb_dir)) is None
    (tmp_path / "labels.txt").write_text("0 Greek/character01\n1 Latin/character01\n\n3 Greek/character02\n")
    np.testing.assert_array_equal(class_groups(str(lmdb_dir)), [0, 1, -1, 0])
    (lmdb_dir / "labels.txt").write_text("0 B/x\n1 A/y\n")
    np.testing.assert_array_equal(class_groups(str(lmdb_dir)), [1, 0])


def test_malformed_line_names_file_and_line(tmp_path):
    (tmp_path / "labels.txt").write_text("0 A/x\nseven B/y\n")
    with pytest.raises(DatasetError, match=r"labels.txt:2: expected"):
        class_groups(str(tmp_path))
