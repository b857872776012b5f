"""TanH: y = tanh(x)."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import SHAPES, check_in_place

TEXT = 'name: "t" type: "TanH" bottom: "x" top: "y"'


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradient(shape):
    x = np.random.default_rng(0).normal(0, 2, shape)
    (y,) = forward(TEXT, [x])
    np.testing.assert_allclose(y, np.tanh(x), rtol=1e-12, atol=1e-15)
    assert check_gradient(TEXT, [x], max_checks=40) > 0


def test_float32():
    x = np.random.default_rng(2).normal(0, 2, (6, 5))
    layer, bottom, top = make_layer(TEXT, [x], dtype=np.float32)
    layer.forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_allclose(top[0].data, np.tanh(x), rtol=1e-6, atol=1e-7)


def test_in_place_matches_separate_blobs():
    check_in_place(TEXT, np.random.default_rng(1).normal(0, 2, (3, 4, 5)))
