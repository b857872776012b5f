"""ELU: y = x for x > 0, else alpha * (exp(x) - 1)."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward
from tests.layers.neuron_checks import SHAPES, away_from_zero, check_in_place


def elu_text(alpha=None):
    options = "" if alpha is None else f"elu_param {{ alpha: {alpha} }}"
    return f'name: "e" type: "ELU" bottom: "x" top: "y" {options}'


def reference(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(x))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("alpha", [None, 0.5, 2.0, -0.25])
def test_forward_and_gradient(shape, alpha):
    x = away_from_zero(shape, high=4.0)
    (y,) = forward(elu_text(alpha), [x])
    np.testing.assert_allclose(y, reference(x, 1.0 if alpha is None else alpha), rtol=1e-12, atol=1e-15)
    assert check_gradient(elu_text(alpha), [x], max_checks=40) > 0


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_in_place_matches_separate_blobs(alpha):
    check_in_place(elu_text(alpha), away_from_zero((3, 4, 5)))


def test_in_place_with_negative_alpha_is_rejected():
    with pytest.raises(LayerError, match="alpha"):
        check_in_place(elu_text(-0.25), away_from_zero((3, 4)))
