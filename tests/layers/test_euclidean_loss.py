"""EuclideanLoss: 1/(2N) sum (a - b)^2 against numpy; gradients to both bottoms; shape errors."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import LayerTestCase, forward, make_layer

TEXT = 'name: "l" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "loss"'


class TestEuclideanLoss(LayerTestCase):
    cases = [dict(shape_a=a, shape_b=b) for a, b in [((1, 1), (1, 1)), ((4, 3), (4, 3)), ((3, 2, 5), (3, 2, 5)),
                                                     ((5, 1), (5,)), ((2, 3, 1, 1), (2, 3)), ((6, 5), (6, 5))]]
    rtol = 1e-12
    max_checks = 60

    def text(self, **case):
        return TEXT

    def inputs(self, shape_a, shape_b):
        rng = np.random.default_rng(0)
        return [rng.standard_normal(shape_a), rng.standard_normal(shape_b)]

    def reference(self, bottoms, shape_a, shape_b):
        a, b = bottoms
        return np.sum((a.reshape(-1) - b.reshape(-1)) ** 2) / (2 * shape_a[0])


def test_loss_is_a_scalar():
    (loss,) = forward(TEXT, [np.ones((4, 3)), np.zeros((4, 3))])
    assert loss.shape == ()


def test_backward_respects_propagate_down_and_loss_weight():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    layer, bottom, top = make_layer(TEXT, [a, b])
    layer.forward(bottom, top)
    top[0].diff[...] = 2.0
    bottom[0].diff[...] = 9
    layer.backward(top, [False, True], bottom)
    assert (bottom[0].diff == 9).all()
    np.testing.assert_allclose(bottom[1].diff, -2.0 * (a - b) / 3)
    assert layer.is_loss


@pytest.mark.parametrize("shape_a, shape_b", [((3, 4), (3, 5)), ((4, 3), (3, 4)), ((2, 6), (4, 3))])
def test_shape_mismatch(shape_a, shape_b):
    with pytest.raises(LayerError, match=r"bottom\[0\] shape .* and bottom\[1\] shape .* must have the same"):
        forward(TEXT, [np.zeros(shape_a), np.zeros(shape_b)])
