"""ReLU: y = max(x, 0) + negative_slope * min(x, 0), in place or not."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import SHAPES, away_from_zero, check_in_place


def relu_text(negative_slope=None):
    options = "" if negative_slope is None else f"relu_param {{ negative_slope: {negative_slope} }}"
    return f'name: "r" type: "ReLU" bottom: "x" top: "y" {options}'


def reference(x, negative_slope=0.0):
    return np.where(x > 0, x, negative_slope * x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("negative_slope", [None, 0.1, -0.5, 2.0])
def test_forward_and_gradient(shape, negative_slope):
    x = away_from_zero(shape)
    (y,) = forward(relu_text(negative_slope), [x])
    np.testing.assert_allclose(y, reference(x, negative_slope or 0.0), rtol=1e-6)
    assert check_gradient(relu_text(negative_slope), [x], max_checks=40) > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = away_from_zero((4, 6))
    layer, bottom, top = make_layer(relu_text(0.2), [x], dtype=dtype)
    layer.forward(bottom, top)
    assert top[0].data.dtype == dtype
    np.testing.assert_allclose(top[0].data, reference(x.astype(dtype), 0.2), rtol=1e-6)


@pytest.mark.parametrize("negative_slope", [None, 0.1])
def test_in_place_matches_separate_blobs(negative_slope):
    check_in_place(relu_text(negative_slope), away_from_zero((3, 4, 5)))


def test_in_place_with_negative_slope_is_rejected():
    with pytest.raises(LayerError, match="negative_slope"):
        check_in_place(relu_text(-0.5), away_from_zero((3, 4)))
