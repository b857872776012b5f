"""BNLL: Caffe's piecewise formula, no overflow at large |x|, gradient, in place."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, forward
from tests.layers.neuron_checks import SHAPES, check_in_place

TEXT = 'name: "b" type: "BNLL" bottom: "x" top: "y"'


def caffe_reference(x):
    """Caffe's BNLL forward: x > 0 ? x + log(1 + exp(-x)) : log(1 + exp(x))."""
    return np.where(x > 0, x + np.log1p(np.exp(-np.abs(x))), np.log1p(np.exp(np.minimum(x, 0))))


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradient(shape):
    x = np.random.default_rng(0).normal(0, 3, shape)
    (y,) = forward(TEXT, [x])
    np.testing.assert_allclose(y, caffe_reference(x), rtol=1e-12)
    assert np.all(y >= 0) and np.all(y >= x)  # Caffe's TestBNLLLayer
    assert check_gradient(TEXT, [x], max_checks=40) > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs(dtype):
    x = np.array([-1000.0, -60.0, 0.0, 60.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):
        (y,) = forward(TEXT, [x], dtype=dtype)
    np.testing.assert_allclose(y, [0, np.exp(-60.0), np.log(2), 60, 1000], rtol=1e-6, atol=1e-30)


def test_in_place():
    check_in_place(TEXT, np.random.default_rng(1).normal(0, 2, (3, 4, 5)))
