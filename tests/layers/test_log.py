"""Log: y = log_base(shift + scale * x), base -1 meaning e."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import SHAPES, check_in_place


def log_text(base=-1.0, scale=1.0, shift=0.0):
    return (f'name: "l" type: "Log" bottom: "x" top: "y" '
            f"log_param {{ base: {base} scale: {scale} shift: {shift} }}")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("base, scale, shift", [(-1.0, 1.0, 0.0), (10.0, 2.0, 3.0), (2.0, -0.5, 4.0)])
def test_forward_and_gradient(shape, base, scale, shift):
    x = np.random.default_rng(0).uniform(0.2, 2, shape)  # keeps shift + scale * x positive
    (y,) = forward(log_text(base, scale, shift), [x])
    want = np.log(shift + scale * x) / (1.0 if base == -1 else np.log(base))
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-15)
    assert check_gradient(log_text(base, scale, shift), [x], max_checks=30) > 0


def test_in_place_matches_separate_blobs():
    check_in_place(log_text(10.0, 2.0, 3.0), np.random.default_rng(1).uniform(0.2, 2, (3, 4)))


def test_bad_base_raises():
    with pytest.raises(LayerError, match="log_param.base"):
        make_layer(log_text(-3.0), [np.ones(3)])
