"""Power: y = (shift + scale * x) ^ power."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, forward
from tests.layers.neuron_checks import SHAPES, check_in_place


def power_text(power, scale, shift):
    return (f'name: "p" type: "Power" bottom: "x" top: "y" '
            f"power_param {{ power: {power} scale: {scale} shift: {shift} }}")


CASES = [  # power, scale, shift (float32-exact, bases kept positive for fractional powers)
    (1.0, 1.0, 0.0),
    (1.0, -1.5, 0.5),
    (2.0, 0.5, 3.0),
    (3.0, -1.5, 0.5),
    (0.5, 2.0, 10.0),
    (-1.0, 1.0, 5.0),
    (0.0, 2.0, 1.0),
    (2.0, 0.0, 1.5),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("power, scale, shift", CASES)
def test_forward_and_gradient(shape, power, scale, shift):
    x = np.random.default_rng(0).uniform(-1, 1, shape)
    (y,) = forward(power_text(power, scale, shift), [x])
    np.testing.assert_allclose(y, (shift + scale * x) ** power, rtol=1e-12)
    assert check_gradient(power_text(power, scale, shift), [x], max_checks=30) > 0


@pytest.mark.parametrize("power, scale, shift", [(2.0, 0.5, 3.0), (0.5, 2.0, 10.0)])
def test_in_place_matches_separate_blobs(power, scale, shift):
    check_in_place(power_text(power, scale, shift), np.random.default_rng(1).uniform(-1, 1, (3, 4)))
