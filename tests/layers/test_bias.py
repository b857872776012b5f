"""Bias: bottom[0] plus a learnable bias (or bottom[1]) broadcast over axes [axis, axis + num_axes)."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer
from tests.layers.neuron_checks import check_in_place


def bias_text(options="", two_bottoms=False):
    second = 'bottom: "b"' if two_bottoms else ""
    return f'name: "bi" type: "Bias" bottom: "x" {second} top: "y" bias_param {{ {options} }}'


def reference(x, bias, axis):
    return x + bias.reshape((1,) * axis + bias.shape + (1,) * (x.ndim - axis - bias.ndim))


@pytest.mark.parametrize("shape, axis, num_axes, param_shape", [
    ((2, 3, 4, 5), 1, 1, (3,)),
    ((2, 3, 4, 5), 2, -1, (4, 5)),
    ((2, 3, 4, 5), -3, 2, (3, 4)),
    ((1, 3), 0, 2, (1, 3)),
    ((5, 1, 3), 1, 0, ()),
])
def test_learnable_bias(shape, axis, num_axes, param_shape):
    text = bias_text(f'axis: {axis} num_axes: {num_axes} filler {{ type: "gaussian" }}')
    x = np.random.default_rng(0).standard_normal(shape)
    layer, bottom, top = make_layer(text, [x])
    assert layer.blobs[0].shape == param_shape
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, layer.blobs[0].data, axis % len(shape)), rtol=1e-12)
    assert check_gradient(text, [x], max_checks=30) > 0


@pytest.mark.parametrize("shape, bias_shape, axis", [
    ((2, 3, 4, 5), (3,), 1),
    ((2, 3, 4, 5), (4, 5), 2),
    ((3, 2), (3, 2), 0),
    ((4, 3), (), 1),
])
def test_bias_from_second_bottom(shape, bias_shape, axis):
    text = bias_text(f"axis: {axis}", two_bottoms=True)
    rng = np.random.default_rng(1)
    x, bias = rng.standard_normal(shape), rng.standard_normal(bias_shape)
    layer, bottom, top = make_layer(text, [x, bias])
    assert layer.blobs == []
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, bias, 0 if bias.ndim == 0 else axis), rtol=1e-12)
    assert check_gradient(text, [x, bias], max_checks=30) > 0


def test_default_filler_is_zero():
    layer, _, _ = make_layer(bias_text(), [np.ones((2, 3))])
    np.testing.assert_array_equal(layer.blobs[0].data, np.zeros(3))


def test_in_place_matches_separate_blobs():
    check_in_place(bias_text('filler { type: "gaussian" }'), np.random.default_rng(3).standard_normal((2, 3, 4)))


def test_bad_configs_raise():
    x = np.ones((2, 3, 4))
    with pytest.raises(LayerError, match="num_axes"):
        make_layer(bias_text("axis: 2 num_axes: 2"), [x])
    with pytest.raises(LayerError, match="axis"):
        make_layer(bias_text("axis: -4"), [x])
    with pytest.raises(LayerError, match=r"\(3, 5\).*\(2, 3, 4\)"):
        make_layer(bias_text(two_bottoms=True), [x, np.ones((3, 5))])
