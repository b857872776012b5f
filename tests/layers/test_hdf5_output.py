"""HDF5Output writes its data and label bottoms to the file as datasets `data` and `label`."""
import h5py
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import make_layer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_appends_batches(tmp_path, dtype):
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(2, 3, 4, 2)), rng.normal(size=(2, 3, 1))
    path = tmp_path / "out.h5"
    text = (f'name: "out" type: "HDF5Output" bottom: "data" bottom: "label" '
            f'hdf5_output_param {{ file_name: "{path}" }}')
    layer, bottom, top = make_layer(text, [first[0], second[0]], "TEST", 0, dtype, 0)
    layer.forward(bottom, top)
    with h5py.File(path, "r") as handle:
        np.testing.assert_array_equal(handle["data"][()], first[0].astype(dtype))
        np.testing.assert_array_equal(handle["label"][()], second[0].astype(dtype))
    bottom[0].data[...], bottom[1].data[...] = first[1], second[1]
    layer.forward(bottom, top)
    with h5py.File(path, "r") as handle:
        assert handle["data"].dtype == dtype
        np.testing.assert_array_equal(handle["data"][()], np.concatenate(first).astype(dtype))
        np.testing.assert_array_equal(handle["label"][()], np.concatenate(second).astype(dtype))


def test_unwritable_file(tmp_path):
    text = (f'name: "out" type: "HDF5Output" bottom: "data" bottom: "label" '
            f'hdf5_output_param {{ file_name: "{tmp_path / "no" / "dir" / "out.h5"}" }}')
    with pytest.raises(LayerError, match=r"'out' \(HDF5Output\): hdf5_output_param.file_name .*cannot create it"):
        make_layer(text, [np.zeros((1, 2)), np.zeros(1)], "TEST", 0, np.float32, 0)
