"""Threshold: y = 1 where x > threshold, else 0; no backward."""
import numpy as np
import pytest

from layerforge.testing import forward, make_layer


@pytest.mark.parametrize("shape", [(1,), (2, 3, 4, 5), (7, 1)])
@pytest.mark.parametrize("threshold", [None, 0.5, -1.0])
def test_forward(shape, threshold):
    options = "" if threshold is None else f"threshold_param {{ threshold: {threshold} }}"
    x = np.random.default_rng(0).normal(0, 2, shape)
    (y,) = forward(f'name: "t" type: "Threshold" bottom: "x" top: "y" {options}', [x])
    np.testing.assert_array_equal(y, (x > (threshold or 0.0)).astype(float))


def test_has_no_backward():
    layer, _, _ = make_layer('name: "t" type: "Threshold" bottom: "x" top: "y"', [np.ones(2)])
    assert not layer.has_backward
