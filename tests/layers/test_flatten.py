"""Flatten: merge axes axis..end_axis, compared with numpy reshape; gradients; bad axes."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward


def flatten_text(options=""):
    return f'name: "f" type: "Flatten" bottom: "x" top: "y" flatten_param {{ {options} }}'


@pytest.mark.parametrize("shape, options, expected_shape", [
    ((2, 3, 4, 5), "", (2, 60)),
    ((1, 3, 4, 5), "", (1, 60)),
    ((2, 3, 4, 5), "axis: 0", (120,)),
    ((2, 3, 4, 5), "axis: 1 end_axis: 2", (2, 12, 5)),
    ((2, 3, 4, 5), "axis: -2", (2, 3, 20)),
    ((2, 3, 4, 5), "axis: 2 end_axis: 2", (2, 3, 4, 5)),
    ((3, 7), "", (3, 7)),
])
def test_forward_and_gradient(shape, options, expected_shape):
    x = np.random.default_rng(0).standard_normal(shape)
    (top,) = forward(flatten_text(options), [x])
    np.testing.assert_array_equal(top, x.reshape(expected_shape))
    assert check_gradient(flatten_text(options), [x], max_checks=40) > 0


@pytest.mark.parametrize("options, message", [
    ("axis: 4", "axis 4 is out of range"),
    ("end_axis: -5", "end_axis -5 is out of range"),
    ("axis: 2 end_axis: 1", "end_axis 1 comes before axis 2"),
])
def test_bad_config(options, message):
    with pytest.raises(LayerError, match=message):
        forward(flatten_text(options), [np.zeros((2, 3, 4, 5))])
