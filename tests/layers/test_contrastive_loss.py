"""ContrastiveLoss: a hand-computed example, numpy reference, gradients, matches top, bad configs."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer


def loss_text(options="", matches=False):
    top = ' top: "match"' if matches else ""
    return ('name: "loss" type: "ContrastiveLoss" bottom: "a" bottom: "b" bottom: "sim" top: "loss"'
            f'{top} contrastive_loss_param {{ {options} }}')


def reference(a, b, similar, margin=1.0, scale=1.0, legacy=False):
    d = np.sqrt(((a - b) ** 2).sum(axis=1))
    dissimilar = np.maximum(margin - d ** 2, 0) if legacy else np.maximum(margin - d, 0) ** 2
    loss = np.where(similar, scale * d ** 2, dissimilar).sum() / (2 * len(a))
    matches = np.where(similar, d <= margin, d > margin).astype(float)[:, None]
    return loss, matches


def pairs(n, dim, margin, seed, legacy=False):
    """Pairs whose distance (squared distance in legacy mode) keeps away from the margin."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim))
    direction = rng.standard_normal((n, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    target = margin * np.where(rng.random(n) < 0.5, rng.uniform(0.2, 0.8, n), rng.uniform(1.2, 1.8, n))
    d = np.sqrt(target) if legacy else target
    return a, a + d[:, None] * direction


# a, b: a similar pair at d = 1, a dissimilar pair inside the margin (d = 1.2), one outside (d = 3).
A = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 0.0]])
B = np.array([[0.0, 0.0], [0.0, 1.2], [0.0, 0.0]])
SIM = np.array([1.0, 0.0, 0.0])
HAND = [  # options, loss, d loss / d a (b gets the negative), matches
    ("margin: 2", (1 + 0.8 ** 2) / 6, [[1 / 3, 0], [0, 0.8 / 3], [0, 0]], [1, 0, 1]),
    ("margin: 2 legacy_version: true", (1 + 2 - 1.44) / 6, [[1 / 3, 0], [0, 0.4], [0, 0]], [1, 0, 1]),
    ("margin: 2 matching_distance_scale: 0.5", (0.5 + 0.8 ** 2) / 6, [[1 / 6, 0], [0, 0.8 / 3], [0, 0]], [1, 0, 1]),
    ("margin: 1.1", 1 / 6, [[1 / 3, 0], [0, 0], [0, 0]], [1, 1, 1]),  # both dissimilar pairs outside
]


@pytest.mark.parametrize("options, loss, grad_a, matches", HAND)
def test_hand_computed_example(options, loss, grad_a, matches):
    layer, bottom, top = make_layer(loss_text(options + " output_matches: true", True), [A, B, SIM])
    layer.forward(bottom, top)
    assert top[0].data == pytest.approx(loss, rel=1e-12)
    np.testing.assert_array_equal(top[1].data[:, 0], matches)
    top[0].diff[...] = 1.0
    layer.backward(top, [True, True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, grad_a, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bottom[1].diff, -np.array(grad_a), rtol=1e-12, atol=1e-15)


SIM_FORMS = {  # similarity bottom built from per-pair classes (la, lb)
    "values": lambda la, lb: (la == lb).astype(float),
    "labels N x 2": lambda la, lb: np.stack([la, lb], axis=1).astype(float),
    "labels N x 2 x 1 x 1": lambda la, lb: np.stack([la, lb], axis=1).astype(float)[:, :, None, None],
}


@pytest.mark.parametrize("n, dim", [(1, 1), (4, 2), (7, 5)])
@pytest.mark.parametrize("form", sorted(SIM_FORMS))
@pytest.mark.parametrize("options, margin, scale, legacy", [
    ("", 1.0, 1.0, False), ("margin: 2.5", 2.5, 1.0, False),
    ("margin: 2 legacy_version: true", 2.0, 1.0, True), ("matching_distance_scale: 3", 1.0, 3.0, False)])
def test_forward_matches_numpy(n, dim, form, options, margin, scale, legacy):
    rng = np.random.default_rng(n + dim)
    a, b = pairs(n, dim, margin, n, legacy)
    la, lb = rng.integers(0, 3, n), rng.integers(0, 3, n)
    loss, matches = reference(a, b, la == lb, margin, scale, legacy)
    top = forward(loss_text(options + " output_matches: true", True), [a, b, SIM_FORMS[form](la, lb)])
    assert top[0].shape == () and top[0] == pytest.approx(loss, rel=1e-12)
    np.testing.assert_array_equal(top[1], matches)


def test_float32_forward():
    a, b = pairs(6, 3, 1.0, 0)
    sim = np.array([1, 0, 1, 1, 0, 0.0])
    top = forward(loss_text(), [a, b, sim], dtype=np.float32)
    expected, _ = reference(a.astype(np.float32).astype(float), b.astype(np.float32).astype(float), sim == 1)
    assert top[0].dtype == np.float32 and top[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("n, dim", [(1, 3), (5, 2), (8, 4)])
@pytest.mark.parametrize("options, margin, legacy", [
    ("", 1.0, False), ("margin: 2 matching_distance_scale: 0.5", 2.0, False),
    ("margin: 2 legacy_version: true", 2.0, True)])
def test_gradient(n, dim, options, margin, legacy):
    a, b = pairs(n, dim, margin, n * dim, legacy)
    sim = (np.arange(n) % 2).astype(float)
    assert check_gradient(loss_text(options), [a, b, sim], check_bottoms=[0, 1]) == 2 * n * dim


def test_gradient_with_matches_top_and_label_pairs():
    a, b = pairs(6, 2, 2.0, 3)
    labels = np.array([[0, 0], [1, 2], [3, 3], [4, 1], [2, 2], [0, 1.0]])
    assert check_gradient(loss_text("margin: 2 output_matches: true", True), [a, b, labels],
                          check_bottoms=[0, 1]) == 24


def test_gradient_is_finite_at_zero_distance():
    a = np.ones((2, 3))
    layer, bottom, top = make_layer(loss_text(), [a, a.copy(), np.array([0.0, 1.0])])
    layer.forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.backward(top, [True, True, False], bottom)
    assert top[0].data == pytest.approx(0.5 / 2)  # the dissimilar pair pays margin^2 / (2N)
    np.testing.assert_array_equal(bottom[0].diff, 0.0)
    np.testing.assert_array_equal(bottom[1].diff, 0.0)


def test_propagate_down_and_no_gradient_to_similarity():
    a, b = pairs(3, 2, 1.0, 1)
    layer, bottom, top = make_layer(loss_text(), [a, b, np.array([1.0, 0.0, 1.0])])
    layer.forward(bottom, top)
    bottom[0].diff[...] = 7.0
    bottom[2].diff[...] = 7.0
    top[0].diff[...] = 2.0
    layer.backward(top, [False, True, True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, 7.0)
    np.testing.assert_array_equal(bottom[2].diff, 7.0)
    assert np.abs(bottom[1].diff).sum() > 0
    assert layer.is_loss


@pytest.mark.parametrize("options, bottoms, tops, message", [
    ("distance_calculation: MANHATTAN", 3, 1, "MANHATTAN is not supported"),
    ("centroid_learning: MATCHING", 3, 1, "centroid_learning MATCHING is not supported"),
    ("", 2, 1, "exactly 3 bottom"),
    ("", 3, 2, "output_matches is false"),
    ("output_matches: true", 3, 3, "at most 2 top"),
])
def test_bad_configs(options, bottoms, tops, message):
    a = np.zeros((2, 2))
    with pytest.raises(LayerError, match=message):
        make_layer(loss_text(options), [a, a, np.zeros(2)][:bottoms], num_tops=tops)


@pytest.mark.parametrize("b_shape, sim_shape, message", [
    ((2, 3), (3,), "must have the same shape"),
    ((3, 2), (4,), "must have 3 rows"),
    ((3, 2), (2, 2), "must have 3 rows"),
])
def test_bad_shapes(b_shape, sim_shape, message):
    with pytest.raises(LayerError, match=message):
        make_layer(loss_text(), [np.zeros((3, 2)), np.zeros(b_shape), np.zeros(sim_shape)])
