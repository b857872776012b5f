"""Sigmoid: y = 1 / (1 + exp(-x)), stable for large |x|."""
import numpy as np
import pytest

from layerforge.testing import LayerTestCase, make_layer
from tests.layers.neuron_checks import SHAPES

TEXT = 'name: "s" type: "Sigmoid" bottom: "x" top: "y"'


class TestSigmoid(LayerTestCase):
    cases = [dict(shape=shape) for shape in SHAPES + [(3, 4, 5)]]
    rtol, atol = 1e-12, 1e-15

    def text(self, shape):
        return TEXT

    def inputs(self, shape):
        return [np.random.default_rng(0).normal(0, 3, shape)]

    def reference(self, bottoms, shape):
        return 1.0 / (1.0 + np.exp(-bottoms[0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_saturate_without_warnings(dtype):
    x = np.array([-1000.0, -90.0, 0.0, 90.0, 1000.0])
    layer, bottom, top = make_layer(TEXT, [x], dtype=dtype)
    with np.errstate(all="raise"):
        layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, [0, 0, 0.5, 1, 1], atol=1e-7)
    assert top[0].data.dtype == dtype
