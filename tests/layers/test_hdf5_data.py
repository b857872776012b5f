"""HDF5Data on .h5 files the test writes: datasets named by the tops, batches wrapping across files."""
import h5py
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import make_layer


@pytest.fixture
def files(tmp_path):
    """Two files (5 and 3 rows) of data (rows 2x3, float64) and integer labels; list.txt names both."""
    rng = np.random.default_rng(0)
    rows = []
    for name, count in (("a.h5", 5), ("b.h5", 3)):
        data, label = rng.normal(size=(count, 2, 3)), rng.integers(0, 9, count)
        with h5py.File(tmp_path / name, "w") as handle:
            handle["data"], handle["label"] = data, label
        rows += list(zip(data, label))
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.h5'}\n{tmp_path / 'b.h5'}\n")
    return tmp_path, rows


def hdf5_data(folder, options, seed=0, dtype=np.float64):
    text = (f'name: "h5" type: "HDF5Data" top: "data" top: "label" '
            f'hdf5_data_param {{ source: "{folder / "list.txt"}" {options} }}')
    layer, _, top = make_layer(text, [], "TRAIN", seed, dtype, 2)
    return layer, top


def test_batches_wrap_across_files(files):
    folder, rows = files
    layer, top = hdf5_data(folder, "batch_size: 3")
    assert top[0].shape == (3, 2, 3) and top[1].shape == (3,)
    for b in range(5):
        layer.forward([], top)
        expected = [rows[(3 * b + i) % len(rows)] for i in range(3)]
        np.testing.assert_array_equal(top[0].data, [r[0] for r in expected])
        np.testing.assert_array_equal(top[1].data, [r[1] for r in expected])


def test_shuffle_visits_every_row_once_per_pass(files):
    folder, rows = files
    layer, top = hdf5_data(folder, "batch_size: 4 shuffle: true", seed=1, dtype=np.float32)
    orders = []
    for _ in range(3):
        seen = []
        for _ in range(2):
            layer.forward([], top)
            for data, label in zip(top[0].data, top[1].data):
                match = [i for i, (d, l) in enumerate(rows) if np.allclose(d, data) and l == label]
                assert len(match) == 1
                seen.append(match[0])
        assert sorted(seen) == list(range(len(rows)))
        orders.append(seen)
    assert any(order != list(range(len(rows))) for order in orders)


def test_errors(files, tmp_path):
    folder, _ = files
    text = (f'name: "h5" type: "HDF5Data" top: "data" top: "weights" '
            f'hdf5_data_param {{ source: "{folder / "list.txt"}" batch_size: 2 }}')
    with pytest.raises(LayerError, match=r"a.h5: no dataset 'weights' for top 'weights' \(the file holds data, label\)"):
        make_layer(text, [], "TRAIN", 0, np.float32, 2)
    with pytest.raises(LayerError, match=r"hdf5_data_param.source .*nothere.txt.*cannot read"):
        make_layer(text.replace(str(folder / "list.txt"), str(tmp_path / "nothere.txt")), [], "TRAIN", 0,
                   np.float32, 2)
    with h5py.File(tmp_path / "bad.h5", "w") as handle:
        handle["data"], handle["label"] = np.zeros((4, 2)), np.zeros(3)
    (tmp_path / "bad.txt").write_text(str(tmp_path / "bad.h5"))
    with pytest.raises(LayerError, match=r"bad.h5: the datasets \['data', 'label'\] must have one non-zero "
                                         r"number of rows, got \[4, 3\]"):
        make_layer(text.replace("weights", "label").replace(str(folder / "list.txt"), str(tmp_path / "bad.txt")),
                   [], "TRAIN", 0, np.float32, 2)
