"""Distance kernels against plain numpy references, compiled and as pure Python (.py_func)."""
import numpy as np
import pytest

from layerforge.kernels import distance

COMPILED_AND_PYTHON = pytest.mark.parametrize("python", [False, True], ids=["jit", "py_func"])


def kernel(name, python):
    fn = getattr(distance, name)
    return getattr(fn, "py_func", fn) if python else fn  # no py_func under NUMBA_DISABLE_JIT=1


def reference_sq_distances(x, c):
    return ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1)


def reference_contrastive(a, b, similar, margin, scale, legacy):
    """Summed pair losses and d(sum)/da, written directly from the formula."""
    diff = a - b
    dsq = (diff ** 2).sum(axis=1)
    d = np.sqrt(dsq)
    if legacy:
        loss = np.where(similar, scale * dsq, np.maximum(margin - dsq, 0))
        factor = np.where(similar, 2 * scale, np.where(margin - dsq > 0, -2.0, 0.0))
    else:
        loss = np.where(similar, scale * dsq, np.maximum(margin - d, 0) ** 2)
        factor = np.where(similar, 2 * scale, np.where(margin - d > 0, -2 * (margin - d) / np.maximum(d, 1e-300), 0))
    return loss.sum(), dsq, factor[:, None] * diff


def reference_accumulate(x, labels, num_classes, max_count):
    """Centroids and caches from each class's own sample stream, class by class."""
    centroids = np.zeros((num_classes, x.shape[1]))
    caches = np.zeros((num_classes, max_count, x.shape[1]))
    counts = np.zeros(num_classes)
    for c in range(num_classes):
        stream = x[labels == c]
        for j, sample in enumerate(stream):
            if j < max_count:
                centroids[c] = stream[:j + 1].mean(axis=0)
            else:
                centroids[c] = (1 - 1 / max_count) * centroids[c] + sample / max_count
        counts[c] = len(stream)
        last = stream[-max_count:]
        slots = np.arange(len(stream) - len(last), len(stream)) % max_count
        caches[c, slots] = last
    return centroids, counts, caches


def reference_knn(x, cache, filled, k):
    out = np.empty((x.shape[0], cache.shape[0]))
    for c in range(cache.shape[0]):
        dist = reference_sq_distances(x, cache[c, :filled[c]])
        out[:, c] = np.sort(dist, axis=1)[:, :k].mean(axis=1) if filled[c] else -1.0
    return out


@COMPILED_AND_PYTHON
@pytest.mark.parametrize("n, num_classes, dim", [(1, 1, 1), (5, 3, 2), (7, 10, 9)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sq_distances(python, n, num_classes, dim, dtype):
    rng = np.random.default_rng(n)
    x, c = rng.standard_normal((n, dim)).astype(dtype), rng.standard_normal((num_classes, dim)).astype(dtype)
    out = np.empty((n, num_classes), dtype)
    kernel("sq_distances", python)(x, c, out)
    np.testing.assert_allclose(out, reference_sq_distances(x.astype(np.float64), c), rtol=1e-5)


@COMPILED_AND_PYTHON
@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("n, dim", [(1, 1), (6, 2), (9, 5)])
def test_contrastive_forward_backward(python, legacy, n, dim):
    rng = np.random.default_rng(dim)
    a, b = rng.standard_normal((n, dim)), rng.standard_normal((n, dim))
    similar = rng.random(n) < 0.5
    margin, scale, coef = 1.5, 0.7, 0.3
    loss, dsq, grad = reference_contrastive(a, b, similar, margin, scale, legacy)
    got_dsq = np.empty(n)
    got = kernel("contrastive_forward", python)(a, b, similar, margin, scale, legacy, got_dsq)
    np.testing.assert_allclose(got, loss, rtol=1e-12)
    np.testing.assert_allclose(got_dsq, dsq, rtol=1e-12)
    diff_a = np.empty_like(a)
    kernel("contrastive_backward", python)(a, b, similar, got_dsq, margin, scale, legacy, coef, diff_a)
    np.testing.assert_allclose(diff_a, coef * grad, rtol=1e-12, atol=1e-15)


def test_contrastive_gradient_is_finite_at_zero_distance():
    a = np.ones((2, 3))
    dsq = np.empty(2)
    distance.contrastive_forward(a, a.copy(), np.array([False, True]), 1.0, 1.0, False, dsq)
    diff_a = np.full_like(a, np.nan)
    distance.contrastive_backward(a, a.copy(), np.array([False, True]), dsq, 1.0, 1.0, False, 1.0, diff_a)
    np.testing.assert_array_equal(diff_a, 0.0)


@COMPILED_AND_PYTHON
@pytest.mark.parametrize("max_count, with_cache", [(1, True), (3, True), (4, False), (50, True)])
def test_accumulate_classes(python, max_count, with_cache):
    rng = np.random.default_rng(max_count)
    num_classes, dim = 4, 3
    x = rng.standard_normal((40, dim))
    labels = rng.integers(0, num_classes, 40)
    labels[5] = -1  # skipped
    centroids, counts, caches = reference_accumulate(x, labels, num_classes, max_count)
    got_centroids = np.zeros((num_classes, dim))
    got_counts = np.zeros(num_classes, np.float32)
    cache = np.zeros((num_classes, max_count if with_cache else 0, dim))
    accumulate = kernel("accumulate_classes", python)
    for start in range(0, 40, 8):  # batches of 8 continue where the last one stopped
        accumulate(x[start:start + 8], labels[start:start + 8], got_centroids, got_counts, cache, max_count)
    np.testing.assert_allclose(got_centroids, centroids, rtol=1e-12, atol=1e-12)
    ready = counts >= max_count
    np.testing.assert_array_equal(got_counts >= max_count, ready)
    np.testing.assert_array_equal(got_counts[~ready], counts[~ready])
    np.testing.assert_array_equal(got_counts % max_count, counts % max_count)  # next ring slot
    assert np.all(got_counts < 2 * max_count)
    if with_cache:
        np.testing.assert_array_equal(cache, caches)


@COMPILED_AND_PYTHON
@pytest.mark.parametrize("k", [1, 3, 10])
def test_knn_distances(python, k):
    rng = np.random.default_rng(k)
    x, cache = rng.standard_normal((5, 2)), rng.standard_normal((4, 6, 2))
    counts = np.array([0, 2, 6, 9], np.float32)  # empty, part filled, full, full and wrapped
    out = np.empty((5, 4))
    kernel("knn_distances", python)(x, cache, counts, k, -1.0, out)
    np.testing.assert_allclose(out, reference_knn(x, cache, [0, 2, 6, 6], k), rtol=1e-12)


def reference_mine(dist, labels, mode, margin, soft):
    """coef, losses, counts of mine_triplets, with numpy's first-index argmax/argmin for ties."""
    m = len(dist)
    coef, losses, counts = np.zeros((m, m)), np.zeros(m), np.zeros(m, np.int64)
    for a in range(m):
        pos = np.flatnonzero((labels == labels[a]) & (np.arange(m) != a))
        neg = np.flatnonzero(labels != labels[a])
        if not len(neg):
            continue
        if mode == distance.BATCH_ALL:
            triplets = [(p, n) for p in pos for n in neg]
        elif mode == distance.BATCH_HARD:
            triplets = [(pos[np.argmax(dist[a, pos])], neg[np.argmin(dist[a, neg])])] if len(pos) else []
        else:
            triplets = []
            for p in pos:
                farther = neg[dist[a, neg] > dist[a, p]]
                n = farther[np.argmin(dist[a, farther])] if len(farther) else neg[np.argmax(dist[a, neg])]
                triplets.append((p, n))
        for p, n in triplets:
            x = dist[a, p] - dist[a, n]
            if soft:
                loss, slope = np.logaddexp(0, x), 1 / (1 + np.exp(-x))
            else:
                loss, slope = max(x + margin, 0), float(x + margin > 0)
            losses[a] += loss
            counts[a] += loss > 0 if mode == distance.BATCH_ALL else 1
            coef[a, p] += slope
            coef[a, n] -= slope
    return coef, losses, counts


@COMPILED_AND_PYTHON
@pytest.mark.parametrize("mode", ["BATCH_ALL", "BATCH_HARD", "SEMI_HARD"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("rounded", [False, True], ids=["distinct", "ties"])
def test_mine_triplets(python, mode, soft, rounded):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((15, 3))
    dist = np.sqrt(reference_sq_distances(x, x))
    if rounded:   # many equal distances: ties must go to the lowest index
        dist = np.round(dist * 2) / 2
    labels = rng.integers(0, 4, 15)
    out = (np.zeros((15, 15)), np.empty(15), np.empty(15, np.int64))
    kernel("mine_triplets", python)(dist, labels, getattr(distance, mode), 0.5, soft, *out)
    for got, want in zip(out, reference_mine(dist, labels, getattr(distance, mode), 0.5, soft)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@COMPILED_AND_PYTHON
def test_mine_triplets_breaks_ties_by_index(python):
    dist = np.array([[0.0, 2.0, 2.0, 1.0, 1.0],
                     [2.0, 0.0, 1.0, 3.0, 3.0],
                     [2.0, 1.0, 0.0, 3.0, 3.0],
                     [1.0, 3.0, 3.0, 0.0, 1.0],
                     [1.0, 3.0, 3.0, 1.0, 0.0]])
    coef, losses, counts = np.zeros((5, 5)), np.empty(5), np.empty(5, np.int64)
    kernel("mine_triplets", python)(dist, np.array([0, 0, 0, 1, 1]), distance.BATCH_HARD, 1.0, False,
                                    coef, losses, counts)
    # anchor 0: positives 1 and 2 tie at 2, negatives 3 and 4 tie at 1 -> (0, 1, 3)
    np.testing.assert_array_equal(coef[0], [0, 1, 0, -1, 0])
    np.testing.assert_array_equal(losses, [2, 0, 0, 1, 1])
    np.testing.assert_array_equal(counts, 1)
