"""ReLU: y = max(x, 0) + negative_slope * min(x, 0), in place or not."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import LayerTestCase
from tests.layers.neuron_checks import SHAPES, away_from_zero, check_in_place


def relu_text(negative_slope=None):
    options = "" if negative_slope is None else f"relu_param {{ negative_slope: {negative_slope} }}"
    return f'name: "r" type: "ReLU" bottom: "x" top: "y" {options}'


class TestReLU(LayerTestCase):
    cases = [dict(shape=shape, negative_slope=slope) for shape in SHAPES for slope in (None, 0.1, -0.5, 2.0)]
    dtype_rtol, dtype_atol = 1e-6, 0.0

    def text(self, shape, negative_slope):
        return relu_text(negative_slope)

    def inputs(self, shape, negative_slope):
        return [away_from_zero(shape)]

    def reference(self, bottoms, shape, negative_slope):
        x = bottoms[0]
        return np.where(x > 0, x, (negative_slope or 0.0) * x)

    def in_place_ok(self, shape, negative_slope):
        return (negative_slope or 0.0) >= 0       # a negative slope is rejected in place (below)


def test_in_place_with_negative_slope_is_rejected():
    with pytest.raises(LayerError, match="negative_slope"):
        check_in_place(relu_text(-0.5), away_from_zero((3, 4)))
