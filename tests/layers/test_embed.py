"""Embed: lookup against numpy, repeated indices accumulate, weight and bias gradients, bad indices."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer

FILLERS = 'weight_filler { type: "uniform" min: -10 max: 10 } bias_filler { type: "uniform" min: -10 max: 10 }'


def text(options="bias_term: true"):
    return (f'name: "e" type: "Embed" bottom: "x" top: "y" '
            f'embed_param {{ num_output: 10 input_dim: 5 {options} {FILLERS} }}')


def indices(shape=(4, 1, 1, 1), seed=0):
    """Caffe's TestForward draws num 4 indices in [0, input_dim); repeats make the gradient sum."""
    return np.random.default_rng(seed).integers(0, 5, shape).astype(float)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4, 1, 1, 1), (3, 7), (6,)])
def test_forward(bias, shape):
    x = indices(shape)
    layer, bottom, top = make_layer(text(f"bias_term: {str(bias).lower()}"), [x])
    assert layer.blobs[0].shape == (5, 10) and len(layer.blobs) == (2 if bias else 1)
    layer.forward(bottom, top)
    want = layer.blobs[0].data[x.astype(int)] + (layer.blobs[1].data if bias else 0)
    assert top[0].shape == shape + (10,)
    np.testing.assert_array_equal(top[0].data, want)


@pytest.mark.parametrize("bias", [True, False])
def test_parameter_gradients(bias):
    x = indices((3, 7), seed=1)
    assert check_gradient(text(f"bias_term: {str(bias).lower()}"), [x], check_bottoms=[]) > 0


def test_repeated_indices_accumulate_and_indices_get_no_gradient():
    x = np.array([[1.0, 1.0, 3.0]])
    layer, bottom, top = make_layer(text(), [x])
    layer.forward(bottom, top)
    top[0].diff[...] = np.arange(30.0).reshape(1, 3, 10)
    bottom[0].diff[...] = 9
    layer.backward(top, [True], bottom)
    weight_diff = layer.blobs[0].diff
    np.testing.assert_array_equal(weight_diff[1], np.arange(10.0) + np.arange(10.0, 20.0))
    np.testing.assert_array_equal(weight_diff[3], np.arange(20.0, 30.0))
    assert not weight_diff[[0, 2, 4]].any()
    np.testing.assert_array_equal(layer.blobs[1].diff, np.arange(30.0).reshape(3, 10).sum(axis=0))
    assert not bottom[0].diff.any()


@pytest.mark.parametrize("value", [5.0, -1.0, 1.5])
def test_bad_index(value):
    with pytest.raises(LayerError, match=f"index {value:g} is not an integer in \\[0, 5\\)"):
        forward(text(), [np.array([0.0, value])])


def test_missing_sizes():
    with pytest.raises(LayerError, match="embed_param.input_dim must be positive"):
        forward('name: "e" type: "Embed" bottom: "x" top: "y" embed_param { num_output: 3 }', [np.zeros(2)])
