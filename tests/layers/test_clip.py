"""Clip: y = min(max(x, min), max); gradient only inside [min, max]."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import SHAPES, away_from_zero, check_in_place


def clip_text(low, high):
    return f'name: "c" type: "Clip" bottom: "x" top: "y" clip_param {{ min: {low} max: {high} }}'


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("low, high", [(-0.5, 0.5), (0.25, 3.0)])
def test_forward_and_gradient(shape, low, high):
    x = away_from_zero(shape)
    x[np.isclose(np.abs(x), 0.5, atol=0.02) | np.isclose(x, 0.25, atol=0.02)] = 1.25  # off the kinks
    (y,) = forward(clip_text(low, high), [x])
    np.testing.assert_array_equal(y, np.clip(x, low, high))
    assert check_gradient(clip_text(low, high), [x], max_checks=40) > 0


def test_in_place_matches_separate_blobs():
    check_in_place(clip_text(-0.5, 0.5), away_from_zero((3, 4, 5)))


@pytest.mark.parametrize("options", ["min: 1 max: 0", "max: 1"])
def test_bad_range_raises(options):
    with pytest.raises(LayerError, match="clip_param"):
        make_layer(f'name: "c" type: "Clip" bottom: "x" top: "y" clip_param {{ {options} }}', [np.ones(2)])
