"""Decode: centroid learning (exact mean, then EMA), readiness, top 1 timing, KNN, ignored
labels, class growth, TEST/RUN never learning, shared and saved state, bad inputs."""
import numpy as np
import pytest

from layerforge.blob import Blob
from layerforge.layer import LayerError
from layerforge.layers.decode import FLT_MAX
from layerforge.proto import layerforge_pb2 as pb
from layerforge.testing import make_layer
from tests.kernels.test_distance_kernels import reference_accumulate, reference_knn, reference_sq_distances


def decode_text(options="", tops=1, labels=True):
    bottoms = 'bottom: "x"' + (' bottom: "label"' if labels else "")
    top = " ".join(f'top: "t{i}"' for i in range(tops))
    return f'name: "decode" type: "Decode" {bottoms} {top} decode_param {{ {options} }}'


def stream(num_batches, n, dim, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_batches, n, dim))
    labels = rng.integers(0, num_classes, (num_batches, n)).astype(float)
    return x, labels


def run(layer, bottom, top, x, labels=None):
    """One forward pass on a new batch; returns copies of the tops."""
    bottom[0].data[...] = x
    if labels is not None:
        bottom[1].data[...] = labels.reshape(bottom[1].shape)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    return [t.data.copy() for t in top]


def train(options, x, labels, tops=1, dtype=np.float64):
    layer, bottom, top = make_layer(decode_text(options, tops), [x[0], labels[0]], dtype=dtype)
    outs = [run(layer, bottom, top, xb, lb) for xb, lb in zip(x, labels)]
    return layer, bottom, top, outs


def expected_distances(x, centroids, counts, ignore=()):
    dist = reference_sq_distances(x, centroids)
    dist[:, counts == 0] = FLT_MAX
    dist[:, [c for c in ignore if c < centroids.shape[0]]] = FLT_MAX
    return dist


@pytest.mark.parametrize("n, cache_size, num_batches", [
    (4, 10, 3),   # exact running mean only
    (4, 1, 6),    # M = 4: exact mean, then EMA with alpha 1/4
    (1, 2, 9),    # batch of one
    (5, 1, 7),
])
def test_centroids_follow_running_mean_then_ema(n, cache_size, num_batches):
    x, labels = stream(num_batches, n, 3, 3, seed=n)
    layer, _, _, outs = train(f"cache_size: {cache_size}", x, labels)
    flat_x, flat_labels = x.reshape(-1, 3), labels.reshape(-1).astype(int)
    max_count = n * cache_size
    centroids, counts, _ = reference_accumulate(flat_x, flat_labels, 3, max_count)
    num_classes = flat_labels.max() + 1
    np.testing.assert_allclose(layer.blobs[0].data, centroids[:num_classes], rtol=1e-12)
    np.testing.assert_array_equal(layer.blobs[2].data, counts[:num_classes] >= max_count)
    assert layer.blobs[3].data[0] == num_batches
    np.testing.assert_allclose(outs[-1][0], expected_distances(x[-1], centroids[:num_classes], counts[:num_classes]),
                               rtol=1e-12)


def test_exact_phase_centroids_are_class_means():
    x, labels = stream(3, 6, 2, 4, seed=1)
    layer, _, _, _ = train("", x, labels)  # cache_size 100: M = 600, never left
    flat_x, flat_labels = x.reshape(-1, 2), labels.reshape(-1)
    for c in range(4):
        np.testing.assert_allclose(layer.blobs[0].data[c], flat_x[flat_labels == c].mean(axis=0), rtol=1e-12)
        assert layer.blobs[1].data[c] == np.sum(flat_labels == c)
    assert not layer.blobs[2].data.any()


def test_ema_phase_formula():
    """Class 0 gets one sample per batch of 2 with cache_size 2 (M = 4): four averaged, then EMA."""
    values = np.array([1.0, 2.0, 3.0, 6.0, 10.0, -2.0])
    x = np.stack([np.stack([[v], [0.0]]) for v in values])
    labels = np.tile([0.0, 1.0], (6, 1))
    layer, _, _, _ = train("cache_size: 2", x, labels)
    expected = values[:4].mean()
    for v in values[4:]:
        expected = 0.75 * expected + 0.25 * v
    assert layer.blobs[0].data[0, 0] == pytest.approx(expected, rel=1e-12)
    assert layer.blobs[2].data.tolist() == [1.0, 1.0]


def test_readiness_is_reached_at_n_times_cache_size():
    x = np.zeros((5, 2, 1))
    labels = np.array([[0, 0], [0, 1], [0, 1], [1, 0], [1, 1.0]])
    layer, bottom, top = make_layer(decode_text("cache_size: 2"), [x[0], labels[0]])
    ready = []
    for xb, lb in zip(x, labels):
        run(layer, bottom, top, xb, lb)
        ready.append(layer.blobs[2].data.tolist())
    # M = 4. Class 0 reaches 4 samples in batch 3; class 1 in batch 5.
    assert ready == [[0.0], [0, 0], [1, 0], [1, 0], [1, 1]]


@pytest.mark.parametrize("iteration, passes_with_output", [(0, [2, 5, 6]), (2, [2, 5, 6]), (3, [5, 6]), (6, [6])])
def test_centroids_top_waits_for_readiness_and_iteration(iteration, passes_with_output):
    """N = 2, cache_size 2: M = 4. Class 0 is ready from pass 2; class 1 is seen from pass 3
    and ready from pass 5, so every seen class is ready at passes 2, 5 and 6."""
    x, _ = stream(6, 2, 2, 2)
    labels = np.array([[0, 0], [0, 0], [1, 1], [1, 0], [0, 1], [1, 1.0]])
    layer, _, top, outs = train(f"cache_size: 2 output_centroids: true centroid_output_iteration: {iteration}",
                                x, labels, tops=2)
    written = [i for i, (_, centroids) in enumerate(outs, start=1) if centroids.any()]
    assert written == passes_with_output
    assert outs[0][1].shape == (1, 2) and outs[-1][1].shape == (2, 2)
    np.testing.assert_array_equal(top[1].data, layer.blobs[0].data)


def test_test_and_run_phases_never_learn():
    x, labels = stream(4, 5, 3, 3)
    trained, _, _, _ = train("cache_size: 1 target: KNN k: 2", x, labels)
    saved = [b.data.copy() for b in trained.blobs]
    for phase, bottoms in (("TEST", [x[0], labels[0] + 4]), ("RUN", [x[0]])):
        layer, bottom, top = make_layer(decode_text("cache_size: 1 target: KNN k: 2", labels=len(bottoms) == 2),
                                        bottoms, phase=phase)
        layer.blobs = trained.blobs  # as net.share_with does
        for xb in x:
            out = run(layer, bottom, top, xb)[0]
        assert out.shape == (5, 3)
        for blob, before in zip(trained.blobs, saved):
            np.testing.assert_array_equal(blob.data, before)


def test_shared_state_survives_growth():
    x, labels = stream(2, 4, 2, 2)
    trained, _, _, _ = train("", x, labels)
    test_layer, bottom, top = make_layer(decode_text(), [x[0], labels[0]], phase="TEST")
    test_layer.blobs = list(trained.blobs)
    before = [id(b) for b in trained.blobs]
    train_bottom = [Blob.from_array(x[0]), Blob.from_array(np.array([0, 1, 6, 2.0]))]
    train_top = [Blob()]
    trained.reshape(train_bottom, train_top)
    trained.forward(train_bottom, train_top)
    assert [id(b) for b in trained.blobs] == before
    assert train_top[0].shape == (4, 7) and trained.blobs[0].shape == (7, 2)
    assert run(test_layer, bottom, top, x[1])[0].shape == (4, 7)
    np.testing.assert_allclose(top[0].data, expected_distances(x[1], trained.blobs[0].data, trained.blobs[1].data))


def test_growth_keeps_existing_centroids():
    layer, bottom, top = make_layer(decode_text(), [np.ones((2, 2)), np.array([0.0, 1.0])])
    run(layer, bottom, top, np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.0, 1.0]))
    out = run(layer, bottom, top, np.array([[5.0, 6.0], [7.0, 8.0]]), np.array([4.0, 1.0]))[0]
    np.testing.assert_array_equal(layer.blobs[0].data, [[1, 2], [5, 6], [0, 0], [0, 0], [5, 6]])
    np.testing.assert_array_equal(layer.blobs[1].data, [1, 2, 0, 0, 1])
    assert out.shape == (2, 5) and np.all(out[:, 2:4] == FLT_MAX)


def test_ignored_labels_are_not_learned_and_get_flt_max():
    x = np.array([[1.0, 0.0], [9.0, 9.0], [0.0, 3.0], [5.0, 5.0]])
    labels = np.array([0, 1, 3, -1.0])
    layer, _, _, outs = train("ignore_label: 1 ignore_label: -1", x[None], labels[None])
    out = outs[0][0]
    np.testing.assert_array_equal(layer.blobs[1].data, [1, 0, 0, 1])
    np.testing.assert_array_equal(layer.blobs[0].data[[0, 3]], [[1, 0], [0, 3]])
    np.testing.assert_allclose(out, expected_distances(x, layer.blobs[0].data, layer.blobs[1].data, ignore=[1]))
    assert np.all(out[:, 1:3] == FLT_MAX) and np.all(out[:, [0, 3]] < FLT_MAX)


def test_ignored_label_does_not_add_classes():
    layer = train("ignore_label: 9", np.ones((1, 2, 2)), np.array([[0.0, 9.0]]))[0]
    assert layer.blobs[0].shape == (1, 2)


def test_knn_distances_and_readiness():
    n, cache_size, k = 3, 2, 2
    x, labels = stream(5, n, 2, 2, seed=3)
    layer, _, _, outs = train(f"target: KNN k: {k} cache_size: {cache_size}", x, labels)
    flat_x, flat_labels = x.reshape(-1, 2), labels.reshape(-1).astype(int)
    centroids, counts, caches = reference_accumulate(flat_x, flat_labels, 2, n * cache_size)
    np.testing.assert_array_equal(layer.blobs[4].data, caches)
    np.testing.assert_array_equal(layer.blobs[2].data, counts >= n * cache_size)
    assert layer.blobs[2].data.all()  # unlike MyCaffe, KNN classes become ready
    np.testing.assert_allclose(layer.blobs[0].data, centroids, rtol=1e-12)
    filled = np.minimum(counts, n * cache_size).astype(int)
    np.testing.assert_allclose(outs[-1][0], reference_knn(x[-1], caches, filled, k), rtol=1e-12)


def test_labels_column_zero_of_pair_labels():
    x = np.array([[1.0], [3.0], [5.0]])
    pair_labels = np.array([[0, 1], [0, 0], [1, 0.0]])[:, :, None, None]
    layer = train("", x[None], pair_labels[None])[0]
    np.testing.assert_array_equal(layer.blobs[0].data, [[2.0], [5.0]])


def test_frozen_state_with_centroid_update_disabled():
    layer, bottom, top = make_layer(decode_text("enable_centroid_update: false output_centroids: true "
                                                "centroid_output_iteration: 1", tops=2),
                                    [np.ones((2, 2)), np.zeros(2)])
    layer.load_blobs([np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([5.0, 5.0]), np.zeros(2), np.zeros(1)])
    dist, centroids = run(layer, bottom, top, np.ones((2, 2)), np.array([0.0, 1.0]))
    np.testing.assert_array_equal(layer.blobs[0].data, [[0, 0], [1, 1]])
    np.testing.assert_array_equal(dist, [[2, 0], [2, 0]])
    np.testing.assert_array_equal(centroids, [[0, 0], [1, 1]])


def test_float32():
    x, labels = stream(3, 4, 2, 3)
    layer, _, top, outs = train("cache_size: 1", x, labels, dtype=np.float32)
    assert all(b.dtype == np.float32 for b in layer.blobs) and outs[-1][0].dtype == np.float32
    reference = train("cache_size: 1", x, labels)[3][-1][0]
    np.testing.assert_allclose(outs[-1][0], reference, rtol=1e-5)


@pytest.mark.parametrize("options", ["", "target: KNN cache_size: 1"])
def test_load_blobs_into_fresh_layer(options):
    x, labels = stream(3, 4, 2, 3)
    trained, _, _, _ = train(options, x, labels)
    fresh, bottom, top = make_layer(decode_text(options), [x[0], labels[0]], phase="TEST")
    fresh.load_blobs([b.data.copy() for b in trained.blobs])
    for mine, theirs in zip(fresh.blobs, trained.blobs):
        np.testing.assert_array_equal(mine.data, theirs.data)
        assert not mine.learnable
    trained_test, tb, tt = make_layer(decode_text(options), [x[0], labels[0]], phase="TEST")
    trained_test.blobs = trained.blobs
    np.testing.assert_array_equal(run(fresh, bottom, top, x[0])[0], run(trained_test, tb, tt, x[0])[0])


@pytest.mark.parametrize("arrays, message", [
    ([np.zeros((2, 3)), np.zeros(2), np.zeros(2), np.zeros(1)], r"blob 0 has shape \(2, 3\)"),
    ([np.zeros((2, 2)), np.zeros(3), np.zeros(2), np.zeros(1)], r"blob 1 has shape \(3,\)"),
    ([np.zeros((2, 2)), np.zeros(2), np.zeros(2), np.zeros(2)], r"blob 3 has shape \(2,\)"),
    ([np.zeros((2, 2)), np.zeros(2), np.zeros(2)], "hold 3 blobs for this layer, expected 4"),
])
def test_load_blobs_rejects_mismatched_state(arrays, message):
    layer, _, _ = make_layer(decode_text(), [np.zeros((2, 2)), np.zeros(2)])
    with pytest.raises(LayerError, match=message):
        layer.load_blobs(arrays)


def test_encoding_dimension_change_is_an_error():
    layer, bottom, top = make_layer(decode_text(), [np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(LayerError, match="encoding dimension changed from 3 to 4"):
        layer.reshape([Blob.from_array(np.zeros((2, 4))), bottom[1]], top)


@pytest.mark.parametrize("text, bottoms, phase, tops, message", [
    (decode_text(), [np.zeros((3, 2)), np.zeros(4)], "TRAIN", 1, "must have 3 rows"),
    (decode_text(), [np.zeros((3, 2)), np.zeros(())], "TRAIN", 1, "must have 3 rows"),
    (decode_text(labels=False), [np.zeros((3, 2))], "TRAIN", 1, "needs a labels bottom in TRAIN"),
    (decode_text("target: PREGEN"), [np.zeros((3, 2)), np.zeros(3)], "TRAIN", 1, "PREGEN is not supported"),
    (decode_text("output_centroids: true"), [np.zeros((3, 2)), np.zeros(3)], "TRAIN", 1, "no second top"),
    (decode_text("cache_size: 0"), [np.zeros((3, 2)), np.zeros(3)], "TRAIN", 1, "cache_size must be positive"),
    (decode_text("k: 0"), [np.zeros((3, 2)), np.zeros(3)], "TRAIN", 1, "k must be positive"),
    (decode_text("centroid_output_iteration: -1"), [np.zeros((3, 2)), np.zeros(3)], "TRAIN", 1, "must not be neg"),
    (decode_text(), [np.zeros((3, 2)), np.array([0, -2, 1.0])], "TRAIN", 1, "label -2 is negative"),
    (decode_text(), [np.zeros((3, 2))] * 3, "TRAIN", 1, "at most 2 bottom"),
    (decode_text(), [np.zeros((3, 2)), np.zeros(3)], "TRAIN", 3, "at most 2 top"),
])
def test_bad_configs_and_inputs(text, bottoms, phase, tops, message):
    with pytest.raises(LayerError, match=message):
        layer, bottom, top = make_layer(text, bottoms, phase=phase, num_tops=tops)
        layer.forward(bottom, top)


def test_knn_batch_size_change_is_an_error():
    layer, bottom, top = make_layer(decode_text("target: KNN cache_size: 1"), [np.ones((2, 2)), np.zeros(2)])
    run(layer, bottom, top, np.ones((2, 2)), np.zeros(2))
    bigger = [Blob.from_array(np.ones((3, 2))), Blob.from_array(np.zeros(3))]
    layer.reshape(bigger, top)
    with pytest.raises(LayerError, match="keep the TRAIN batch size fixed"):
        layer.forward(bigger, top)


def test_test_phase_before_any_training_has_no_classes():
    layer, bottom, top = make_layer(decode_text(tops=2), [np.ones((3, 2)), np.zeros(3)], phase="TEST", num_tops=2)
    layer.forward(bottom, top)
    assert top[0].shape == (3, 0) and top[1].shape == (0, 2)


def test_no_backward():
    layer, _, _ = make_layer(decode_text(), [np.zeros((2, 2)), np.zeros(2)])
    assert layer.has_backward is False


def test_set_centroids_replaces_the_learned_state():
    """`layerforge centroids` sets exact class means; distances then use them, unseen classes stay unknown."""
    x, labels = stream(2, 6, 3, 2)
    layer, bottom, top, _ = train("cache_size: 1", x, labels)
    centroids = np.array([[1.0, 0, 0], [0, 0, 0], [0, 2.0, 0]])
    counts = np.array([4, 0, 7])
    layer.set_centroids(centroids, counts)                 # grows from 2 classes to 3
    np.testing.assert_array_equal(layer.blobs[0].data, centroids)
    np.testing.assert_array_equal(layer.blobs[1].data, counts)
    np.testing.assert_array_equal(layer.blobs[2].data, [1, 0, 1])
    layer.phase = pb.TEST   # no learning from this batch
    (dist,) = run(layer, bottom, top, x[0], labels[0])
    np.testing.assert_allclose(dist, expected_distances(x[0], centroids, counts))
    with pytest.raises(LayerError, match="do not fit encodings of dimension 3"):
        layer.set_centroids(np.zeros((2, 4)), [1, 1])


def test_set_centroids_refuses_knn():
    x, labels = stream(1, 4, 2, 2)
    layer, _, _, _ = train("target: KNN k: 1 cache_size: 1", x, labels)
    with pytest.raises(LayerError, match="target KNN"):
        layer.set_centroids(np.zeros((2, 2)), [1, 1])
