"""Fillers draw what Caffe's do: checked by statistics on large blobs and exact values on small ones."""
import numpy as np
import pytest

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.proto import layerforge_pb2 as pb


def filled(shape, **fields):
    blob = Blob(shape, np.float64)
    fill(blob, pb.FillerParameter(**fields), np.random.default_rng(0))
    return blob.data


def test_constant():
    assert np.all(filled((3, 4), type="constant", value=2.5) == 2.5)


def test_uniform_range():
    values = filled((200, 50), type="uniform", min=-2, max=3)
    assert values.min() >= -2 and values.max() <= 3 and abs(values.mean() - 0.5) < 0.05


def test_gaussian_moments_and_sparse():
    values = filled((400, 100), type="gaussian", mean=1, std=2)
    assert abs(values.mean() - 1) < 0.05 and abs(values.std() - 2) < 0.05
    sparse = filled((400, 100), type="gaussian", std=1, sparse=10)
    assert abs(np.mean(sparse != 0) - 0.1) < 0.01


@pytest.mark.parametrize("norm,fan", [("FAN_IN", 50 * 9), ("FAN_OUT", 20 * 9), ("AVERAGE", 35 * 9)])
def test_xavier_and_msra_scale(norm, fan):
    shape = (20, 50, 3, 3)
    variance_norm = pb.FillerParameter.VarianceNorm.Value(norm)
    xavier = filled(shape, type="xavier", variance_norm=variance_norm)
    bound = np.sqrt(3.0 / fan)
    assert np.abs(xavier).max() <= bound and np.abs(xavier).max() > 0.95 * bound
    msra = filled(shape, type="msra", variance_norm=variance_norm)
    assert abs(msra.std() - np.sqrt(2.0 / fan)) < 0.05 * np.sqrt(2.0 / fan)


def test_positive_unitball_rows_sum_to_one():
    values = filled((5, 3, 2, 2), type="positive_unitball")
    assert np.all(values >= 0)
    np.testing.assert_allclose(values.reshape(5, -1).sum(axis=1), 1.0)


def test_bilinear_kernel_matches_caffe_formula():
    values = filled((1, 1, 4, 4), type="bilinear")
    f = np.ceil(4 / 2.0)
    c = (2 * f - 1 - f % 2) / (2 * f)
    expected = np.array([[(1 - abs(x / f - c)) * (1 - abs(y / f - c)) for x in range(4)] for y in range(4)])
    np.testing.assert_allclose(values[0, 0], expected)


def test_unknown_filler_names_the_type():
    with pytest.raises(ValueError, match="unknown filler type 'gausian'"):
        filled((2, 2), type="gausian")


def test_seeded_fill_repeats():
    a = filled((3, 3), type="gaussian")
    b = filled((3, 3), type="gaussian")
    np.testing.assert_array_equal(a, b)
