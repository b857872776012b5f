"""Softmax along an axis: forward against numpy, gradients, stability, in-place use, bad axis."""
import numpy as np
import pytest

from layerforge.blob import Blob
from layerforge.layer import LayerError
from layerforge.registry import create_layer
from layerforge.testing import check_gradient, forward, layer_param


def softmax_text(axis=None):
    options = f"softmax_param {{ axis: {axis} }}" if axis is not None else ""
    return f'name: "p" type: "Softmax" bottom: "x" top: "y" {options}'


def reference(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


CASES = [((1, 3), None), ((4, 10), 1), ((2, 3, 4, 5), None), ((3, 4, 5), 2), ((3, 4, 5), -1), ((5, 3, 2), 0),
         ((1, 1, 3), 1), ((7,), 0)]


@pytest.mark.parametrize("shape, axis", CASES)
def test_forward_and_gradient(shape, axis):
    x = np.random.default_rng(0).standard_normal(shape) * 3
    (top,) = forward(softmax_text(axis), [x])
    np.testing.assert_allclose(top, reference(x, 1 if axis is None else axis), rtol=1e-12, atol=1e-15)
    assert check_gradient(softmax_text(axis), [x], max_checks=60) > 0


def test_float32_large_inputs_stay_finite():
    x = np.array([[1000, 999, -1000], [-5e3, -5e3, -5e3]], np.float32)
    (top,) = forward(softmax_text(), [x], dtype=np.float32)
    assert top.dtype == np.float32
    np.testing.assert_allclose(top, reference(x.astype(np.float64), 1), rtol=1e-6, atol=1e-7)


def test_in_place():
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    layer = create_layer(layer_param('name: "p" type: "Softmax" bottom: "x" top: "x"'))
    blob = Blob.from_array(x)
    layer.setup([blob], [blob])
    layer.reshape([blob], [blob])
    layer.forward([blob], [blob])
    y = reference(x, 1)
    np.testing.assert_allclose(blob.data, y, rtol=1e-12)
    blob.diff[...] = dy
    layer.backward([blob], [True], [blob])
    np.testing.assert_allclose(blob.diff, y * (dy - (dy * y).sum(axis=1, keepdims=True)), rtol=1e-10, atol=1e-14)


def test_bad_axis():
    with pytest.raises(LayerError, match=r"axis 3 is out of range for bottom shape \(2, 3\)"):
        forward(softmax_text(3), [np.zeros((2, 3))])
