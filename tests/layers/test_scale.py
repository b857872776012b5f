"""Scale: bottom[0] times a learnable scale (or bottom[1]) broadcast over axes [axis, axis + num_axes), plus an optional bias."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer
from tests.layers.neuron_checks import check_in_place

GAUSSIANS = 'filler { type: "gaussian" } bias_filler { type: "gaussian" }'


def scale_text(options="", two_bottoms=False):
    second = 'bottom: "s"' if two_bottoms else ""
    return f'name: "sc" type: "Scale" bottom: "x" {second} top: "y" scale_param {{ {options} }}'


def reference(x, scale, bias, axis):
    """Broadcast scale (and bias) of shape x.shape[axis:axis + scale.ndim] against x."""
    shape = (1,) * axis + scale.shape + (1,) * (x.ndim - axis - scale.ndim)
    y = x * scale.reshape(shape)
    return y if bias is None else y + bias.reshape(shape)


CASES = [  # bottom shape, axis, num_axes, expected parameter shape
    ((2, 3, 4, 5), 1, 1, (3,)),
    ((2, 3, 4, 5), 1, 2, (3, 4)),
    ((2, 3, 4, 5), 0, -1, (2, 3, 4, 5)),
    ((2, 3, 4, 5), -1, 1, (5,)),
    ((1, 3), 1, 1, (3,)),
    ((3, 5, 1), 2, 1, (1,)),
    ((4, 3), 1, 0, ()),
]


@pytest.mark.parametrize("shape, axis, num_axes, param_shape", CASES)
@pytest.mark.parametrize("bias_term", [False, True])
def test_learnable_scale(shape, axis, num_axes, param_shape, bias_term):
    text = scale_text(f"axis: {axis} num_axes: {num_axes} bias_term: {str(bias_term).lower()} {GAUSSIANS}")
    x = np.random.default_rng(0).standard_normal(shape)
    layer, bottom, top = make_layer(text, [x])
    assert [b.shape for b in layer.blobs] == [param_shape] * (2 if bias_term else 1)
    layer.forward(bottom, top)
    bias = layer.blobs[1].data if bias_term else None
    want = reference(x, layer.blobs[0].data, bias, axis % len(shape))
    np.testing.assert_allclose(top[0].data, want, rtol=1e-12)
    assert check_gradient(text, [x], max_checks=30) > 0


@pytest.mark.parametrize("shape, scale_shape, axis", [
    ((2, 3, 4, 5), (3,), 1),
    ((2, 3, 4, 5), (3, 4), 1),
    ((2, 3, 4, 5), (4, 5), -2),
    ((1, 3, 2), (1, 3), 0),
    ((4, 3), (), 1),  # a scalar second bottom scales everything
])
@pytest.mark.parametrize("bias_term", [False, True])
def test_scale_from_second_bottom(shape, scale_shape, axis, bias_term):
    text = scale_text(f"axis: {axis} bias_term: {str(bias_term).lower()} {GAUSSIANS}", two_bottoms=True)
    rng = np.random.default_rng(1)
    x, scale = rng.standard_normal(shape), rng.standard_normal(scale_shape)
    layer, bottom, top = make_layer(text, [x, scale])
    assert [b.shape for b in layer.blobs] == ([scale_shape] if bias_term else [])
    layer.forward(bottom, top)
    bias = layer.blobs[0].data if bias_term else None
    want = reference(x, scale, bias, 0 if scale.ndim == 0 else axis % len(shape))
    np.testing.assert_allclose(top[0].data, want, rtol=1e-12)
    assert check_gradient(text, [x, scale], max_checks=30) > 0


def test_default_fillers_give_identity():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    layer, bottom, top = make_layer(scale_text("bias_term: true"), [x])
    np.testing.assert_array_equal(layer.blobs[0].data, np.ones(3))
    np.testing.assert_array_equal(layer.blobs[1].data, np.zeros(3))
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x)


@pytest.mark.parametrize("bias_term", [False, True])
def test_in_place_matches_separate_blobs(bias_term):
    check_in_place(scale_text(f"bias_term: {str(bias_term).lower()} {GAUSSIANS}"),
                   np.random.default_rng(3).standard_normal((2, 3, 4)))


def test_bad_configs_raise():
    x = np.ones((2, 3, 4))
    with pytest.raises(LayerError, match="num_axes"):
        make_layer(scale_text("num_axes: 3"), [x])
    with pytest.raises(LayerError, match="num_axes"):
        make_layer(scale_text("num_axes: -2"), [x])
    with pytest.raises(LayerError, match="axis"):
        make_layer(scale_text("axis: 5"), [x])
    with pytest.raises(LayerError, match=r"\(4,\).*\(2, 3, 4\)"):
        make_layer(scale_text(two_bottoms=True), [x, np.ones(4)])
