"""Sigmoid: y = 1 / (1 + exp(-x)), stable for large |x|."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import SHAPES, check_in_place

TEXT = 'name: "s" type: "Sigmoid" bottom: "x" top: "y"'


def reference(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradient(shape):
    x = np.random.default_rng(0).normal(0, 3, shape)
    (y,) = forward(TEXT, [x])
    np.testing.assert_allclose(y, reference(x), rtol=1e-12, atol=1e-15)
    assert check_gradient(TEXT, [x], max_checks=40) > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_saturate_without_warnings(dtype):
    x = np.array([-1000.0, -90.0, 0.0, 90.0, 1000.0])
    layer, bottom, top = make_layer(TEXT, [x], dtype=dtype)
    with np.errstate(all="raise"):
        layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, [0, 0, 0.5, 1, 1], atol=1e-7)
    assert top[0].data.dtype == dtype


def test_in_place_matches_separate_blobs():
    check_in_place(TEXT, np.random.default_rng(1).normal(0, 2, (3, 4, 5)))
