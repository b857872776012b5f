"""Normalize: numpy reference (SSD's Normalize), unit norms, learned scale, gradient checks."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.layers.normalize import NormalizeLayer
from layerforge.testing import check_gradient, forward, make_layer


def layer_text(options=""):
    return f'name: "norm" type: "Normalize" bottom: "x" top: "y" normalize_param {{ {options} }}'


def reference(x, across_spatial=True, scale=1.0, eps=1e-10):
    axes = tuple(range(1, x.ndim)) if across_spatial else 1
    norm = np.sqrt((x * x).sum(axis=axes, keepdims=True) + eps)
    scale = np.reshape(scale, (1, -1) + (1,) * (x.ndim - 2))
    return x / norm * scale


OPTIONS = [
    ("", {}),
    ("across_spatial: false", {"across_spatial": False}),
    ("eps: 0.5", {"eps": 0.5}),
    ('scale_filler { type: "constant" value: 20 }', {"scale": 20.0}),
    ('channel_shared: false scale_filler { type: "constant" value: 3 }', {"scale": [3.0, 3.0, 3.0]}),
    ('across_spatial: false channel_shared: false scale_filler { type: "constant" value: 2 }',
     {"across_spatial": False, "scale": [2.0, 2.0, 2.0]}),
]


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5), (3, 3, 2)])
@pytest.mark.parametrize("options, kwargs", OPTIONS)
def test_forward_matches_numpy(shape, options, kwargs):
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    y = forward(layer_text(options), [x])[0]
    np.testing.assert_allclose(y, reference(x, **kwargs), rtol=1e-12)


def test_items_become_unit_vectors():
    x = np.random.default_rng(0).standard_normal((5, 8)) * [[0.1], [1], [10], [100], [1e4]]
    y = forward(layer_text(), [x])[0]
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, rtol=1e-8)
    np.testing.assert_allclose(y * np.linalg.norm(x, axis=1, keepdims=True), x, rtol=1e-8)


def test_zero_item_stays_zero_with_finite_gradient():
    layer, bottom, top = make_layer(layer_text(), [np.zeros((2, 3))])
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, 0)
    top[0].diff[...] = 1.0
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, 1 / np.sqrt(1e-10), rtol=1e-6)


def test_scale_is_a_parameter_only_with_a_filler():
    assert make_layer(layer_text(), [np.ones((2, 3))])[0].blobs == []
    layer = make_layer(layer_text('channel_shared: false scale_filler { type: "constant" value: 20 }'),
                       [np.ones((2, 3, 2, 2))])[0]
    assert layer.blobs[0].shape == (3,) and np.all(layer.blobs[0].data == 20)
    assert make_layer(layer_text('scale_filler { value: 1 }'), [np.ones((2, 3))])[0].blobs[0].shape == ()
    assert NormalizeLayer.batch_independent


def randomize_scale(layer):
    if layer.blobs:
        layer.blobs[0].data[...] = np.random.default_rng(3).uniform(0.5, 2, layer.blobs[0].shape)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 3)])
@pytest.mark.parametrize("options, kwargs", OPTIONS)
def test_gradient(shape, options, kwargs):
    x = np.random.default_rng(5).standard_normal(shape)
    count = check_gradient(layer_text(options), [x], layer_hook=randomize_scale)
    assert count == x.size + (("scale_filler" in options) and (3 if "channel_shared: false" in options else 1))


def test_bad_shapes():
    with pytest.raises(LayerError, match="at least 2 axes"):
        make_layer(layer_text(), [np.ones(4)])
    layer, bottom, top = make_layer(layer_text('channel_shared: false scale_filler { value: 1 }'), [np.ones((2, 3))])
    bottom[0].reshape((2, 4))
    with pytest.raises(LayerError, match=r"bottom has 4 channels .* scale has shape \(3,\)"):
        layer.reshape(bottom, top)
