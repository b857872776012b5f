"""TripletLoss: numpy reference, a hand-computed example, gradients for all three bottoms."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer


def loss_text(options=""):
    return ('name: "loss" type: "TripletLoss" bottom: "a" bottom: "p" bottom: "n" top: "loss"'
            f' triplet_loss_param {{ {options} }}')


def reference(a, p, n, margin=1.0):
    hinge = ((a - p) ** 2).sum(axis=1) - ((a - n) ** 2).sum(axis=1) + margin
    return np.maximum(hinge, 0).sum() / len(a)


def triplets(n, dim, margin, seed):
    """Random triplets with every hinge at least 0.1 away from its kink."""
    rng = np.random.default_rng(seed)
    while True:
        a, p, neg = (rng.standard_normal((n, dim)) for _ in range(3))
        hinge = ((a - p) ** 2).sum(axis=1) - ((a - neg) ** 2).sum(axis=1) + margin
        if np.all(np.abs(hinge) > 0.1):
            return a, p, neg


def test_hand_computed_example():
    a = np.array([[0.0, 0.0], [0.0, 0.0]])
    p = np.array([[1.0, 0.0], [0.5, 0.0]])
    neg = np.array([[0.0, 1.5], [0.0, 3.0]])
    layer, bottom, top = make_layer(loss_text("margin: 2"), [a, p, neg])
    layer.forward(bottom, top)
    assert top[0].data == pytest.approx((1 - 2.25 + 2) / 2)  # the second triplet is past the margin
    top[0].diff[...] = 1.0
    layer.backward(top, [True, True, True], bottom)
    np.testing.assert_allclose(bottom[0].diff, [[-1.0, 1.5], [0, 0]])
    np.testing.assert_allclose(bottom[1].diff, [[1.0, 0.0], [0, 0]])
    np.testing.assert_allclose(bottom[2].diff, [[0.0, -1.5], [0, 0]])


@pytest.mark.parametrize("n, dim", [(1, 1), (4, 3), (9, 2)])
@pytest.mark.parametrize("options, margin", [("", 1.0), ("margin: 0.2", 0.2), ("margin: 3", 3.0)])
def test_forward_matches_numpy(n, dim, options, margin):
    margin = float(np.float32(margin))  # triplet_loss_param.margin is a float field
    a, p, neg = triplets(n, dim, margin, n)
    top = forward(loss_text(options), [a, p, neg])
    assert top[0].shape == () and top[0] == pytest.approx(reference(a, p, neg, margin), rel=1e-12)


@pytest.mark.parametrize("n, dim", [(1, 3), (5, 2), (6, 4)])
@pytest.mark.parametrize("options, margin", [("", 1.0), ("margin: 2.5", 2.5)])
def test_gradient(n, dim, options, margin):
    assert check_gradient(loss_text(options), list(triplets(n, dim, margin, dim))) == 3 * n * dim


def test_bad_shapes_and_bottom_count():
    with pytest.raises(LayerError, match="must have one shape"):
        make_layer(loss_text(), [np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(LayerError, match="exactly 3 bottom"):
        make_layer(loss_text(), [np.zeros((2, 3)), np.zeros((2, 3))])
