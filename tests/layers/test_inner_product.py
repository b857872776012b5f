"""InnerProduct: top = flatten(bottom, from axis) · Wᵀ + b, Caffe weight layout (num_output, K) or transposed."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer


def ip_text(num_output=5, options=""):
    fillers = 'weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 }'
    num = f"num_output: {num_output}" if num_output is not None else ""
    return (f'name: "fc" type: "InnerProduct" bottom: "x" top: "y" '
            f"inner_product_param {{ {num} {fillers} {options} }}")


def reference(x, weight, bias, axis, transpose):
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
    w = weight if transpose else weight.T
    y = rows @ w + (0 if bias is None else bias)
    return y.reshape(x.shape[:axis] + (w.shape[1],))


CASES = [  # bottom shape, axis
    ((1, 3), 1),
    ((2, 3, 4, 5), 1),
    ((3, 7), 1),
    ((2, 3, 4, 5), 2),
    ((2, 3, 4), -1),
    ((5, 3), 0),
    ((1, 1, 1, 1), 1),
]


@pytest.mark.parametrize("shape, axis", CASES)
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("bias_term", [True, False])
def test_forward_and_gradient(shape, axis, transpose, bias_term):
    options = f"axis: {axis} transpose: {str(transpose).lower()} bias_term: {str(bias_term).lower()}"
    text = ip_text(4, options)
    x = np.random.default_rng(0).standard_normal(shape)
    layer, bottom, top = make_layer(text, [x])
    k = int(np.prod(shape[axis % len(shape):]))
    assert layer.blobs[0].shape == ((k, 4) if transpose else (4, k))
    assert len(layer.blobs) == (2 if bias_term else 1)
    layer.forward(bottom, top)
    bias = layer.blobs[1].data if bias_term else None
    want = reference(x, layer.blobs[0].data, bias, axis % len(shape), transpose)
    assert top[0].shape == want.shape
    np.testing.assert_allclose(top[0].data, want, rtol=1e-12, atol=1e-12)
    assert check_gradient(text, [x], max_checks=30) > 0


def test_float32_and_default_fillers():
    x = np.random.default_rng(1).standard_normal((4, 6))
    layer, bottom, top = make_layer('name: "fc" type: "InnerProduct" bottom: "x" top: "y" '
                                    "inner_product_param { num_output: 3 }", [x], dtype=np.float32)
    assert all(b.data.dtype == np.float32 for b in layer.blobs)
    np.testing.assert_array_equal(layer.blobs[0].data, 0)  # Caffe's default filler: constant 0
    layer.blobs[0].data[...] = np.arange(18).reshape(3, 6) / 10
    layer.forward(bottom, top)
    assert top[0].data.dtype == np.float32
    np.testing.assert_allclose(top[0].data, reference(x, layer.blobs[0].data, 0.0, 1, False), rtol=1e-5)


def test_backward_adds_into_parameter_diffs():
    x = np.random.default_rng(2).standard_normal((3, 4))
    layer, bottom, top = make_layer(ip_text(2), [x])
    layer.forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.blobs[0].diff[...] = 10.0
    layer.blobs[1].diff[...] = 10.0
    layer.backward(top, [False], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, 10.0 + np.ones((2, 3)) @ x)
    np.testing.assert_allclose(layer.blobs[1].diff, [13.0, 13.0])
    np.testing.assert_array_equal(bottom[0].diff, 0)  # propagate_down false: untouched


def test_missing_num_output_raises():
    with pytest.raises(LayerError, match="num_output"):
        make_layer(ip_text(None), [np.ones((2, 3))])


def test_bad_axis_raises():
    with pytest.raises(LayerError, match="axis"):
        make_layer(ip_text(3, "axis: 4"), [np.ones((2, 3))])


@pytest.mark.parametrize("transpose", [False, True])
def test_changed_feature_count_names_both_shapes(transpose):
    layer, bottom, top = make_layer(ip_text(3, f"transpose: {str(transpose).lower()}"), [np.ones((2, 6))])
    bottom[0].reshape((2, 7))
    weight_shape = (6, 3) if transpose else (3, 6)
    with pytest.raises(LayerError, match=rf"\(2, 7\).*{weight_shape[0]}, {weight_shape[1]}"):
        layer.reshape(bottom, top)


def test_batch_size_may_change():
    layer, bottom, top = make_layer(ip_text(3), [np.ones((2, 6))])
    x = np.random.default_rng(3).standard_normal((5, 6))
    bottom[0].reshape(x.shape)
    bottom[0].data[...] = x
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    want = reference(x, layer.blobs[0].data, layer.blobs[1].data, 1, False)
    np.testing.assert_allclose(top[0].data, want, rtol=1e-12)
