"""TripletMiningLoss: numpy reference for each mining mode, gradient checks, the tie-breaking rule."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer

def loss_text(options="", encodings=1):
    bottoms = "".join(f' bottom: "x{k}"' for k in range(encodings))
    return (f'name: "loss" type: "TripletMiningLoss"{bottoms} bottom: "label" top: "loss"'
            f' triplet_loss_param {{ {options} }}')


def options(mining, margin=1.0, soft=False, squared=False):
    return (f"mining: {mining} margin: {margin} soft_margin: {str(soft).lower()} "
            f"squared_distance: {str(squared).lower()}")


def distances(x, squared):
    d2 = ((x[:, None] - x[None]) ** 2).sum(axis=-1)
    return d2 if squared else np.sqrt(d2)


def mined(x, labels, mining, squared, first=True):
    """The triplets (a, p, n) a mining mode picks, written out with numpy; ties go to the lowest
    index (`first`) or, to show that the rule matters, the highest."""
    d = distances(x, squared)
    pick = (lambda values: np.argmax(values)) if first else (lambda values: len(values) - 1 - np.argmax(values[::-1]))
    triplets = []
    for a in range(len(x)):
        pos = np.flatnonzero((labels == labels[a]) & (np.arange(len(x)) != a))
        neg = np.flatnonzero(labels != labels[a])
        if len(neg) == 0:
            continue
        if mining == "BATCH_ALL":
            triplets += [(a, p, n) for p in pos for n in neg]
        elif mining == "BATCH_HARD" and len(pos):
            triplets.append((a, pos[pick(d[a, pos])], neg[pick(-d[a, neg])]))
        elif mining == "SEMI_HARD":
            for p in pos:
                farther = neg[d[a, neg] > d[a, p]]
                triplets.append((a, p, farther[pick(-d[a, farther])] if len(farther) else neg[pick(d[a, neg])]))
    return triplets


def triplet_losses(x, triplets, margin, soft, squared):
    d = distances(x, squared)
    gap = np.array([d[a, p] - d[a, n] for a, p, n in triplets])
    return np.logaddexp(0, gap) if soft else np.maximum(gap + margin, 0)


def reference(x, labels, mining, margin=1.0, soft=False, squared=False, first=True):
    triplets = mined(x, labels, mining, squared, first)
    losses = triplet_losses(x, triplets, margin, soft, squared)
    count = np.count_nonzero(losses > 0) if mining == "BATCH_ALL" else len(triplets)
    return losses.sum() / max(count, 1)


def frozen_gradient(x, labels, mining, margin=1.0, soft=False, squared=False, first=True, eps=1e-6):
    """Central differences of the loss with the triplets and the count fixed at x's choice: the
    gradient the layer gives wherever the selection is locally constant, and at ties the
    gradient of the selection the tie-breaking rule makes."""
    triplets = mined(x, labels, mining, squared, first)
    losses = triplet_losses(x, triplets, margin, soft, squared)
    count = max(np.count_nonzero(losses > 0) if mining == "BATCH_ALL" else len(triplets), 1)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = []
        for step in (eps, -eps):
            y = x.copy()
            y[index] += step
            shifted.append(triplet_losses(y, triplets, margin, soft, squared).sum() / count)
        grad[index] = (shifted[0] - shifted[1]) / (2 * eps)
    return grad


def batch(m, dim, classes, seed, margin=1.0, squared=False, gap=1e-4):
    """Random encodings whose distances from each anchor are distinct, nonzero and, for every
    triplet, keep d_ap - d_an + margin away from 0: no tie and no kink within `gap`."""
    rng = np.random.default_rng(seed)
    while True:
        x = rng.standard_normal((m, dim))
        labels = rng.integers(0, classes, m).astype(float)
        d = distances(x, squared)
        rows = np.sort(d + np.diag(np.full(m, np.inf)), axis=1)[:, :-1]
        h = d[:, :, None] - d[:, None, :] + margin
        if np.diff(rows, axis=1).min(initial=np.inf) > gap and rows.min() > gap and np.abs(h).min() > gap:
            return x, labels


GRID = [("BATCH_ALL", False), ("BATCH_HARD", False), ("SEMI_HARD", False), ("BATCH_ALL", True),
        ("BATCH_HARD", True), ("SEMI_HARD", True)]


@pytest.mark.parametrize("mining, soft", GRID)
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("m, dim, classes", [(3, 3, 2), (7, 2, 3), (12, 4, 4)])
def test_forward_matches_numpy(mining, soft, squared, m, dim, classes):
    x, labels = batch(m, dim, classes, m + dim, 0.5, squared)
    top = forward(loss_text(options(mining, 0.5, soft, squared)), [x, labels])
    assert top[0].shape == ()
    assert top[0] == pytest.approx(reference(x, labels, mining, 0.5, soft, squared), rel=1e-12)


def test_hand_computed_batch_hard():
    x = np.array([[0.0], [1.0], [3.0], [3.5]])
    labels = np.array([0, 0, 1, 1])
    # anchor -> (hardest positive, distance), (hardest negative, distance), loss with margin 2.5:
    # 0 -> (1, 1), (2, 3): 0.5; 1 -> (0, 1), (2, 2): 1.5; 2 -> (3, 0.5), (1, 2): 1; 3 -> (2, 0.5), (1, 2.5): 0.5
    top = forward(loss_text("margin: 2.5"), [x, labels])
    assert top[0] == pytest.approx((0.5 + 1.5 + 1.0 + 0.5) / 4)


@pytest.mark.parametrize("mining, soft", GRID)
@pytest.mark.parametrize("squared", [False, True])
def test_gradient(mining, soft, squared):
    x, labels = batch(10, 3, 3, 5, 1.0, squared)
    assert check_gradient(loss_text(options(mining, 1.0, soft, squared)), [x, labels], check_bottoms=[0]) == 30


@pytest.mark.parametrize("mining", ["BATCH_ALL", "BATCH_HARD", "SEMI_HARD"])
def test_gradient_of_several_encoding_bottoms_with_their_label_columns(mining):
    x, labels = batch(12, 2, 4, 9, 0.75)
    # Three bottoms (anchor, positive, negative encodings of 4 items) and 4 x 3 labels:
    # row k*4 + i of the batch is item i of bottom k.
    parts = [x[k * 4:(k + 1) * 4] for k in range(3)]
    columns = labels.reshape(3, 4).T
    text = loss_text(options(mining, 0.75), encodings=3)
    assert forward(text, parts + [columns])[0] == pytest.approx(reference(x, labels, mining, 0.75), rel=1e-12)
    assert check_gradient(text, parts + [columns], check_bottoms=[0, 1, 2]) == 24


def tied_batch():
    """Anchor 0 has two positives at distance 1 and two negatives at distance 1.5; anchors 1 and 2
    see the two negatives at equal distances too."""
    x = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.5], [0.0, -1.5]])
    return x, np.array([0, 0, 0, 1, 1])


@pytest.mark.parametrize("mining", ["BATCH_HARD", "SEMI_HARD"])
def test_ties_go_to_the_lowest_index(mining):
    x, labels = tied_batch()
    triplets = mined(x, labels, mining, False)
    if mining == "BATCH_HARD":
        assert triplets[:3] == [(0, 1, 3), (1, 2, 3), (2, 1, 3)]
    else:   # both negatives are farther than each positive of anchor 0
        assert triplets[:2] == [(0, 1, 3), (0, 2, 3)]
    layer, bottom, top = make_layer(loss_text(options(mining)), [x, labels])
    layer.forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.backward(top, [True, False], bottom)
    expected = frozen_gradient(x, labels, mining)
    np.testing.assert_allclose(bottom[0].diff, expected, atol=1e-8)
    # The rule decides the gradient: breaking the ties the other way gives another one.
    assert not np.allclose(expected, frozen_gradient(x, labels, mining, first=False), atol=1e-3)


def test_gradient_with_equal_distances_where_the_choice_does_not_matter():
    """A square lattice: many distances are exactly equal. Batch-all uses every triplet, and
    batch-hard's tied candidates here are never the farthest positive or nearest negative, so the loss
    is differentiable at these ties and the gradient check is well defined."""
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.0], [3.0, 1.0]])
    labels = np.array([0, 0, 0, 0, 1, 1])
    d = distances(x, False)
    assert d[0, 1] == d[0, 2] and d[4, 1] == d[5, 3] and d[1, 4] == d[3, 5]
    for mining, margin in [("BATCH_ALL", 1.3), ("BATCH_HARD", 0.8)]:
        h = np.array([d[a, p] - d[a, n] + margin for a, p, n in mined(x, labels, mining, False)])
        assert np.abs(h).min() > 0.05 and np.any(h > 0)
        assert check_gradient(loss_text(options(mining, margin)), [x, labels], check_bottoms=[0]) == 12


def test_no_valid_triplet_gives_zero_loss_and_gradient():
    x = np.array([[0.0, 1.0], [2.0, 0.5], [1.0, 1.0]])
    layer, bottom, top = make_layer(loss_text(), [x, np.array([0, 1, 2])])
    layer.forward(bottom, top)
    assert top[0].data == 0
    top[0].diff[...] = 1.0
    layer.backward(top, [True, False], bottom)
    np.testing.assert_array_equal(bottom[0].diff, 0)


def test_bad_shapes():
    with pytest.raises(LayerError, match=r"labels of shape \(4, 2\) do not fit 1 encoding bottom\(s\) of 4 items"):
        make_layer(loss_text(), [np.zeros((4, 3)), np.zeros((4, 2))])
    with pytest.raises(LayerError, match="encoding bottoms must have one shape"):
        make_layer(loss_text(encodings=2), [np.zeros((4, 3)), np.zeros((4, 2)), np.zeros((4, 2))])
    with pytest.raises(LayerError, match="at least 2 bottom"):
        make_layer(loss_text(encodings=0), [np.zeros((4, 3))])
