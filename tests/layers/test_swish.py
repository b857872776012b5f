"""Swish: y = x * sigmoid(beta * x)."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, forward
from tests.layers.neuron_checks import SHAPES, check_in_place


def swish_text(beta=None):
    options = "" if beta is None else f"swish_param {{ beta: {beta} }}"
    return f'name: "s" type: "Swish" bottom: "x" top: "y" {options}'


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("beta", [None, 0.5, 2.0])
def test_forward_and_gradient(shape, beta):
    x = np.random.default_rng(0).normal(0, 2, shape)
    (y,) = forward(swish_text(beta), [x])
    np.testing.assert_allclose(y, x / (1 + np.exp(-(beta or 1.0) * x)), rtol=1e-12, atol=1e-15)
    assert check_gradient(swish_text(beta), [x], max_checks=40) > 0


def test_in_place_matches_separate_blobs():
    check_in_place(swish_text(1.5), np.random.default_rng(1).normal(0, 2, (3, 4, 5)))
