"""Reduction: every operation, axis and coeff against numpy (Caffe's test cases), with gradients."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer

OPS = {"SUM": np.sum, "ASUM": lambda x, axis: np.abs(x).sum(axis=axis),
       "SUMSQ": lambda x, axis: (x ** 2).sum(axis=axis), "MEAN": np.mean}


def text(operation, axis=None, coeff=None):
    options = f"operation: {operation}"
    options += f" axis: {axis}" if axis is not None else ""
    options += f" coeff: {coeff}" if coeff is not None else ""
    return f'name: "r" type: "Reduction" bottom: "x" top: "y" reduction_param {{ {options} }}'


@pytest.mark.parametrize("operation", list(OPS))
@pytest.mark.parametrize("axis, coeff", [(None, None), (None, 2.3), (1, None), (1, 2.3), (-1, -0.5), (3, None)])
def test_forward_and_gradient(operation, axis, coeff):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))  # Caffe's test blob
    (y,) = forward(text(operation, axis, coeff), [x])
    real_axis = 0 if axis is None else axis % 4
    want = OPS[operation](x.reshape(x.shape[:real_axis] + (-1,)), axis=-1) * (1.0 if coeff is None else coeff)
    assert y.shape == x.shape[:real_axis]
    np.testing.assert_allclose(y, want, rtol=1e-6)  # coeff is a float field
    assert check_gradient(text(operation, axis, coeff), [x], max_checks=60) > 0


def test_asum_gradient_is_zero_at_zero():
    x = np.array([[0.0, 2.0, -3.0]])
    layer, bottom, top = make_layer(text("ASUM", 1), [x])
    layer.forward(bottom, top)
    top[0].diff[...] = 2
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [[0, 2, -2]])


def test_bad_axis():
    with pytest.raises(LayerError, match="reduction_param.axis: axis 5 is out of range"):
        forward(text("SUM", 5), [np.zeros((2, 3))])


@pytest.mark.parametrize("axis, independent", [(None, False), (1, True), (-1, True), (-2, False)])
def test_batch_independence(axis, independent):
    layer, bottom, _ = make_layer(text("SUM", axis), [np.zeros((2, 3))])
    assert layer.batch_independent_for(bottom) is independent
