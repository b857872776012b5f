"""AccuracyEncoding: nearest-centroid accuracy with centroids learned in TRAIN only."""
import numpy as np
import pytest

from layerforge.blob import Blob
from layerforge.layer import LayerError
from layerforge.testing import make_layer
from tests.kernels.test_distance_kernels import reference_accumulate, reference_sq_distances


def accuracy_text(options=""):
    return ('name: "acc" type: "AccuracyEncoding" bottom: "x" bottom: "label" top: "accuracy" '
            + options)


def run(layer, bottom, top, x, labels):
    bottom[0].data[...] = x
    bottom[1].data[...] = labels.reshape(bottom[1].shape)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    return float(top[0].data)


def clusters(num_batches, n, seed=0, spread=0.3):
    """Three well separated classes in 2-D."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 4.0], [4.0, 0.0], [-4.0, -4.0]])
    labels = rng.integers(0, 3, (num_batches, n))
    return centres[labels] + spread * rng.standard_normal((num_batches, n, 2)), labels.astype(float)


@pytest.mark.parametrize("n, cache_size", [(1, 3), (6, 100), (5, 1)])
def test_train_scores_then_learns(n, cache_size):
    x, labels = clusters(6, n, seed=n, spread=3.0)  # overlapping: accuracy is informative
    layer, bottom, top = make_layer(accuracy_text(f"decode_param {{ cache_size: {cache_size} }}"),
                                    [x[0], labels[0]])
    flat_x, flat_labels = x.reshape(-1, 2), labels.reshape(-1).astype(int)
    for b in range(6):
        seen = slice(0, b * n)
        got = run(layer, bottom, top, x[b], labels[b])
        centroids, counts, _ = reference_accumulate(flat_x[seen], flat_labels[seen], 3, n * cache_size)
        dist = reference_sq_distances(x[b], centroids)
        dist[:, counts == 0] = np.inf
        expected = np.mean((dist.argmin(axis=1) == labels[b]) & np.isfinite(dist.min(axis=1)))
        assert got == pytest.approx(expected), f"batch {b}"
    centroids, counts, _ = reference_accumulate(flat_x, flat_labels, 3, n * cache_size)
    used = flat_labels.max() + 1
    np.testing.assert_allclose(layer.blobs[0].data, centroids[:used], rtol=1e-12)
    np.testing.assert_array_equal(layer.blobs[1].data > 0, counts[:used] > 0)


def test_test_phase_never_learns_from_test_labels():
    x, labels = clusters(3, 8)
    trained, bottom, top = make_layer(accuracy_text(), [x[0], labels[0]])
    for xb, lb in zip(x, labels):
        run(trained, bottom, top, xb, lb)
    assert run(trained, bottom, top, x[0], labels[0]) == 1.0
    saved = [b.data.copy() for b in trained.blobs]
    tester, tbottom, ttop = make_layer(accuracy_text(), [x[0], labels[0]], phase="TEST")
    tester.blobs = trained.blobs  # as net.share_with does
    wrong = (labels[0] + 1) % 3 + 3 * (np.arange(8) % 2)  # wrong and new (3..5) labels
    for _ in range(5):
        assert run(tester, tbottom, ttop, x[0], wrong) == 0.0
    for blob, before in zip(trained.blobs, saved):
        np.testing.assert_array_equal(blob.data, before)
    assert run(tester, tbottom, ttop, x[0], labels[0]) == 1.0


def test_ignored_labels_are_neither_scored_nor_learned():
    x = np.array([[0.0, 4.0], [4.0, 0.0], [4.1, 0.0], [9.0, 9.0]])
    labels = np.array([0, 1, 1, 2.0])
    layer, bottom, top = make_layer(accuracy_text("accuracy_param { ignore_label: 2 } "
                                                  "decode_param { ignore_label: 0 }"), [x, labels])
    assert run(layer, bottom, top, x, labels) == 0.0  # nothing learned yet: the kept rows are wrong
    np.testing.assert_array_equal(layer.blobs[1].data, [0, 2])
    assert run(layer, bottom, top, x, labels) == 1.0  # the two class-1 rows are the only ones scored


def test_load_blobs_and_bad_inputs():
    x, labels = clusters(2, 4)
    trained, bottom, top = make_layer(accuracy_text(), [x[0], labels[0]])
    run(trained, bottom, top, x[0], labels[0])
    fresh, fbottom, ftop = make_layer(accuracy_text(), [x[0], labels[0]], phase="TEST")
    fresh.load_blobs([b.data.copy() for b in trained.blobs])
    assert run(fresh, fbottom, ftop, x[1], labels[1]) == run(trained, bottom, top, x[1], labels[1])
    with pytest.raises(LayerError, match="blob 1 has shape"):
        fresh.load_blobs([np.zeros((2, 2)), np.zeros(3)])
    with pytest.raises(LayerError, match="must have 4 rows"):
        make_layer(accuracy_text(), [x[0], labels[0][:3]])
    with pytest.raises(LayerError, match="top_k 3 is not supported"):
        make_layer(accuracy_text("accuracy_param { top_k: 3 }"), [x[0], labels[0]])
    with pytest.raises(LayerError, match="encoding dimension changed from 2 to 3"):
        fresh.reshape([Blob.from_array(np.zeros((4, 3))), fbottom[1]], ftop)
    assert fresh.has_backward is False
