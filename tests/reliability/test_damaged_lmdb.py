"""A truncated or corrupt LMDB is one line naming it (exit 2), never a crash, a raw lmdb
traceback or the --resize advice; `data mnist` rebuilds a database whose records do not decode."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from layerforge.data import DatasetError, build_mnist_lmdbs, read_lmdb
from layerforge.data.store import datums, write_lmdb
from tests.data.test_idx import fake_mnist  # noqa: F401  (fixture)
from tests.synthetic import ROOT


def _damaged(tmp_path, how):
    rng = np.random.default_rng(0)
    good = write_lmdb(tmp_path / "good_lmdb", datums(rng.integers(0, 255, (3000, 1, 28, 28)).astype(np.uint8),
                                                     rng.integers(0, 10, 3000)))
    payload = (good / "data.mdb").read_bytes()
    middle = len(payload) // 2
    damaged = {"truncated": payload[:middle],
               "header": bytes(8192) + payload[8192:],
               "pages": payload[:middle] + bytes(rng.integers(0, 255, 32768).astype(np.uint8)) + payload[middle + 32768:],
               "zeroed": payload[:middle] + bytes(32768) + payload[middle + 32768:]}[how]
    path = tmp_path / f"{how}_lmdb"
    shutil.copytree(good, path)
    (path / "data.mdb").write_bytes(damaged)
    return path


NET = """name: "d"
layer {{ name: "data" type: "Data" top: "data" top: "label"
        data_param {{ source: "{source}" backend: LMDB batch_size: 4 }} }}
"""


@pytest.mark.parametrize("how", ["truncated", "header", "pages", "zeroed"])
def test_damaged_lmdb_is_one_line_naming_it(tmp_path, how):
    path = _damaged(tmp_path, how)
    (tmp_path / "net.prototxt").write_text(NET.format(source=path))
    done = subprocess.run([sys.executable, "-m", "layerforge", "time", "--model", str(tmp_path / "net.prototxt"),
                           "--iterations", "1"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("layerforge: error: ") and str(path) in lines[0], done.stderr
    assert "rebuild it" in lines[0] and "--resize" not in lines[0] and "Traceback" not in done.stderr


def test_mnist_rebuilds_a_database_whose_records_do_not_decode(fake_mnist, tmp_path):
    train, test = build_mnist_lmdbs(tmp_path / "out", fake_mnist[0])
    mdb = train / "data.mdb"
    payload = bytearray(mdb.read_bytes())
    start = payload.index(bytes(fake_mnist[1]["train"][0][5].ravel()[:16]))   # inside record 5's pixels
    payload[start - 40:start + 40] = bytes(80)
    mdb.write_bytes(bytes(payload))
    with pytest.raises(DatasetError):
        read_lmdb(train)
    build_mnist_lmdbs(tmp_path / "out", fake_mnist[0])
    images, labels = read_lmdb(train)
    np.testing.assert_array_equal(images[:, 0], fake_mnist[1]["train"][0])
