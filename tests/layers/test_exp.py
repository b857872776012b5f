"""Exp: y = base ^ (shift + scale * x), base -1 meaning e."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import SHAPES, check_in_place


def exp_text(base=-1.0, scale=1.0, shift=0.0):
    return (f'name: "e" type: "Exp" bottom: "x" top: "y" '
            f"exp_param {{ base: {base} scale: {scale} shift: {shift} }}")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("base, scale, shift", [(-1.0, 1.0, 0.0), (2.0, 0.5, 1.0), (0.5, -1.5, -2.0)])
def test_forward_and_gradient(shape, base, scale, shift):
    x = np.random.default_rng(0).uniform(-2, 2, shape)
    (y,) = forward(exp_text(base, scale, shift), [x])
    want = np.exp(shift + scale * x) if base == -1 else base ** (shift + scale * x)
    np.testing.assert_allclose(y, want, rtol=1e-12)
    assert check_gradient(exp_text(base, scale, shift), [x], max_checks=30) > 0


def test_in_place_matches_separate_blobs():
    check_in_place(exp_text(2.0, 0.5, 1.0), np.random.default_rng(1).uniform(-2, 2, (3, 4)))


@pytest.mark.parametrize("base", [0.0, -2.0])
def test_bad_base_raises(base):
    with pytest.raises(LayerError, match="exp_param.base"):
        make_layer(exp_text(base), [np.ones(3)])
