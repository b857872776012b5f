"""Slice: forward against np.split, gradients, deprecated slice_dim, bad configs."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward


def slice_text(num_tops, options=""):
    tops = " ".join(f'top: "t{i}"' for i in range(num_tops))
    return f'name: "s" type: "Slice" bottom: "x" {tops} slice_param {{ {options} }}'


CASES = [  # shape, options, number of tops, numpy split points, axis
    ((1, 5, 2), "slice_point: 2", 2, [2], 1),
    ((3, 6, 3, 2), "", 3, [2, 4], 1),
    ((4, 3, 5), "axis: 0 slice_point: 1 slice_point: 3", 3, [1, 3], 0),
    ((2, 3, 7), "axis: -1 slice_point: 1 slice_point: 2 slice_point: 6", 4, [1, 2, 6], 2),
    ((2, 4), "slice_dim: 1", 2, [2], 1),
    ((6, 3), "slice_dim: 0", 3, [2, 4], 0),
    ((2, 2, 3, 3), "axis: 1 slice_point: 1 slice_dim: 1", 2, [1], 1),  # MyCaffe Siamese spelling
    ((3, 4), "", 1, [], 1),
]


@pytest.mark.parametrize("shape, options, num_tops, points, axis", CASES)
def test_forward_matches_numpy(shape, options, num_tops, points, axis):
    x = np.random.default_rng(0).standard_normal(shape)
    tops = forward(slice_text(num_tops, options), [x])
    expected = np.split(x, points, axis=axis)
    assert len(tops) == len(expected)
    for got, want in zip(tops, expected):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape, options, num_tops, points, axis", CASES)
def test_gradient(shape, options, num_tops, points, axis):
    x = np.random.default_rng(1).standard_normal(shape)
    assert check_gradient(slice_text(num_tops, options), [x], max_checks=50) > 0


@pytest.mark.parametrize("shape, options, num_tops, message", [
    ((2, 5), "slice_point: 5", 2, "strictly increasing"),
    ((2, 5), "slice_point: 0", 2, "strictly increasing"),
    ((2, 5), "slice_point: 3 slice_point: 2", 3, "strictly increasing"),
    ((2, 5), "slice_point: 2", 3, "slice_point has 1 values for 3 tops"),
    ((2, 5), "", 2, "does not divide into 2 equal tops"),
    ((2, 5), "axis: 2", 2, "axis 2 is out of range"),
    ((2, 5), "slice_dim: 3", 2, "slice_dim 3 is out of range"),
    ((2, 4), "axis: 0 slice_dim: 1", 2, "disagree"),
])
def test_bad_config(shape, options, num_tops, message):
    with pytest.raises(LayerError, match=message):
        forward(slice_text(num_tops, options), [np.zeros(shape)])
