"""Parameter: a learnable blob as the top."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer

PARAMETER = 'name: "p" type: "Parameter" top: "w" parameter_param { shape { dim: 3 dim: 4 } }'


def test_parameter_outputs_its_blob():
    layer, bottom, top = make_layer(PARAMETER, [])
    assert layer.blobs[0].shape == (3, 4) and top[0].shape == (3, 4)
    layer.blobs[0].data[...] = np.arange(12).reshape(3, 4)
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, layer.blobs[0].data)


def test_parameter_gradient():
    def randomize(layer):
        layer.blobs[0].data[...] = np.random.default_rng(0).standard_normal((3, 4))
    assert check_gradient(PARAMETER, [], layer_hook=randomize) == 12


def test_parameter_without_shape_raises():
    with pytest.raises(LayerError, match="parameter_param.shape"):
        make_layer('name: "p" type: "Parameter" top: "w"', [])
