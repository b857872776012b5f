"""LSTMUnit: forward against numpy (Caffe's formulas), gradients as Caffe's TestLSTMUnitGradient
(cont all 0, and mixed 1, 0, 1), shape errors."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer
from tests.kernels.test_recurrent_kernels import reference_forward

TEXT = 'name: "unit" type: "LSTMUnit" bottom: "c_prev" bottom: "x" bottom: "cont" top: "c" top: "h"'


def unit_inputs(cont):
    rng = np.random.default_rng(0)   # Caffe's fixture: uniform in [-1, 1], 3 streams, 7 units
    return [rng.uniform(-1, 1, (1, 3, 7)), rng.uniform(-1, 1, (1, 3, 28)), np.array([cont], float)]


@pytest.mark.parametrize("cont", [(0, 0, 0), (1, 0, 1)])
def test_forward_and_gradient(cont):
    bottoms = unit_inputs(cont)
    layer, bottom, top = make_layer(TEXT, bottoms)
    layer.forward(bottom, top)
    c, h = reference_forward(bottoms[0][0], bottoms[1][0], bottoms[2][0])
    np.testing.assert_allclose(top[0].data[0], c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(top[1].data[0], h, rtol=1e-12, atol=1e-15)
    assert check_gradient(TEXT, bottoms, check_bottoms=[0, 1]) > 0


def test_bad_shapes():
    with pytest.raises(LayerError, match="1×N×4H"):
        make_layer(TEXT, [np.zeros((1, 3, 7)), np.zeros((1, 3, 27)), np.zeros((1, 3))])
