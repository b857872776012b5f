"""AbsVal: y = |x|, gradient sign(x) * dy."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, forward
from tests.layers.neuron_checks import SHAPES, away_from_zero, check_in_place

TEXT = 'name: "a" type: "AbsVal" bottom: "x" top: "y"'


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradient(shape):
    x = away_from_zero(shape)
    (y,) = forward(TEXT, [x])
    np.testing.assert_array_equal(y, np.abs(x))
    assert check_gradient(TEXT, [x], max_checks=40) > 0


def test_in_place_matches_separate_blobs():
    check_in_place(TEXT, away_from_zero((3, 4, 5)))
