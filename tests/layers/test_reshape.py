"""Reshape: Caffe semantics of 0 (copy), -1 (infer), axis and num_axes; gradients; bad configs."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward


def reshape_text(dims, options=""):
    shape = " ".join(f"dim: {d}" for d in dims)
    return f'name: "r" type: "Reshape" bottom: "x" top: "y" reshape_param {{ shape {{ {shape} }} {options} }}'


@pytest.mark.parametrize("shape, dims, options, expected_shape", [
    ((2, 3, 4, 5), [0, -1], "", (2, 60)),
    ((1, 3, 4, 5), [0, -1], "", (1, 60)),
    ((2, 3, 4, 5), [-1], "", (120,)),
    ((2, 3, 4, 5), [0, 0, 2, 10], "", (2, 3, 2, 10)),
    ((2, 3, 4, 5), [6, -1, 1], "", (6, 20, 1)),
    ((2, 8), [2, 2, 2], "axis: 1", (2, 2, 2, 2)),
    ((2, 8), [4, -1], "axis: -2", (2, 4, 2)),
    ((2, 8), [1, 1], "axis: -1", (2, 8, 1, 1)),
    ((2, 3, 4, 5), [12], "axis: 1 num_axes: 2", (2, 12, 5)),
    ((2, 3, 4, 5), [1], "axis: 0 num_axes: 0", (1, 2, 3, 4, 5)),
    ((2, 3, 4, 5), [1], "axis: -1 num_axes: 0", (2, 3, 4, 5, 1)),
    ((2, 3, 4, 5), [0, -1], "axis: 2", (2, 3, 4, 5)),
    ((7, 5), [], "axis: 0 num_axes: 0", (7, 5)),
])
def test_forward_and_gradient(shape, dims, options, expected_shape):
    x = np.random.default_rng(0).standard_normal(shape)
    (top,) = forward(reshape_text(dims, options), [x])
    assert top.shape == tuple(expected_shape)
    np.testing.assert_array_equal(top, x.reshape(expected_shape))
    assert check_gradient(reshape_text(dims, options), [x], max_checks=40) > 0


@pytest.mark.parametrize("dims, options, message", [
    ([-1, -1], "", "more than one -1"),
    ([2, -2], "", "dim below -1"),
    ([7, -1], "", r"bottom shape \(2, 3, 4, 5\) has 120 values, not a multiple of 7"),
    ([5, 5], "", r"top shape \(5, 5\) \(25 values\) does not match bottom shape \(2, 3, 4, 5\) \(120 values\)"),
    ([0, 0, 0, 0, 0], "", "has a 0 at position 4"),
    ([2], "axis: 5", "axis 5 with num_axes -1 is out of range"),
    ([2], "axis: 2 num_axes: 3", "out of range"),
    ([2], "num_axes: -2", "num_axes -2"),
])
def test_bad_config(dims, options, message):
    with pytest.raises(LayerError, match=message):
        forward(reshape_text(dims, options), [np.zeros((2, 3, 4, 5))])
