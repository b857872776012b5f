"""Distance kernels: squared distances, contrastive loss, class centroids and KNN caches."""
import numpy as np
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small

# Below this distance the contrastive gradient direction (a - b) / d is taken as 0/EPS.
EPS = 1e-12


@serial_when_small(lambda x, c, out: out.size * x.shape[1])
@njit(cache=True, parallel=True)
def sq_distances(x, c, out):
    """out[i, l] = sum_d (x[i, d] - c[l, d])**2 for encodings x (N, D) and centres c (L, D)."""
    for i in prange(x.shape[0]):
        for j in range(c.shape[0]):
            acc = 0.0
            for d in range(x.shape[1]):
                diff = x[i, d] - c[j, d]
                acc += diff * diff
            out[i, j] = acc


@njit(cache=True)
def contrastive_forward(a, b, similar, margin, scale, legacy, dist_sq):
    """Fill dist_sq[i] = ||a_i - b_i||^2 and return the summed (un-normalised) pair losses.

    Similar pairs add scale * d^2; dissimilar pairs add max(margin - d, 0)^2, or
    max(margin - d^2, 0) when `legacy`.
    """
    total = 0.0
    for i in range(a.shape[0]):
        acc = 0.0
        for d in range(a.shape[1]):
            diff = float(a[i, d]) - float(b[i, d])
            acc += diff * diff
        dist_sq[i] = acc
        if similar[i]:
            total += scale * acc
        elif legacy:
            total += max(margin - acc, 0.0)
        else:
            hinge = max(margin - np.sqrt(acc), 0.0)
            total += hinge * hinge
    return total


@njit(cache=True)
def contrastive_backward(a, b, similar, dist_sq, margin, scale, legacy, coef, diff_a):
    """diff_a[i] = coef * d(pair loss i)/d a_i; the gradient for b_i is -diff_a[i]."""
    for i in range(a.shape[0]):
        if similar[i]:
            factor = 2.0 * scale
        elif legacy:
            factor = -2.0 if margin - dist_sq[i] > 0.0 else 0.0
        else:
            dist = np.sqrt(dist_sq[i])
            hinge = margin - dist
            factor = -2.0 * hinge / max(dist, EPS) if hinge > 0.0 else 0.0
        for d in range(a.shape[1]):
            diff_a[i, d] = coef * factor * (float(a[i, d]) - float(b[i, d]))


@njit(cache=True)
def accumulate_classes(x, labels, centroids, counts, cache, max_count):
    """Learn from encodings x (N, D) with class labels (N,), item by item, in order.

    A class's first sample is copied, then the centroid is the exact running mean while it
    has fewer than `max_count` samples, then an exponential moving average with
    alpha = 1/max_count. counts[c] is the number of samples seen, kept in [max_count,
    2*max_count) once the class is ready so it stays exact in float32; counts[c] % max_count
    is the ring-buffer slot of the class's next encoding in `cache` (L, max_count, D), which is
    skipped when cache.shape[1] == 0. Labels < 0 are skipped.
    """
    for i in range(x.shape[0]):
        c = labels[i]
        if c < 0:
            continue
        n = int(counts[c])
        if n == 0:
            for d in range(x.shape[1]):
                centroids[c, d] = x[i, d]
        else:
            alpha = 1.0 / (n + 1) if n < max_count else 1.0 / max_count
            for d in range(x.shape[1]):
                centroids[c, d] += alpha * (x[i, d] - centroids[c, d])
        if cache.shape[1] > 0:
            slot = n % max_count
            for d in range(x.shape[1]):
                cache[c, slot, d] = x[i, d]
        n += 1
        counts[c] = n if n < 2 * max_count else max_count


@njit(cache=True, parallel=True)
def knn_distances(x, cache, counts, k, empty, out):
    """out[i, c] = mean of the k smallest squared distances from x[i] to the filled part of
    class c's cache (fewer than k: all of them); `empty` for a class with nothing cached."""
    for i in prange(x.shape[0]):
        dists = np.empty(cache.shape[1])
        for c in range(cache.shape[0]):
            filled = min(int(counts[c]), cache.shape[1])
            if filled == 0:
                out[i, c] = empty
                continue
            for s in range(filled):
                acc = 0.0
                for d in range(x.shape[1]):
                    diff = x[i, d] - cache[c, s, d]
                    acc += diff * diff
                dists[s] = acc
            nearest = np.sort(dists[:filled])[:min(k, filled)]
            out[i, c] = nearest.mean()


BATCH_ALL, BATCH_HARD, SEMI_HARD = 0, 1, 2


@njit(cache=True)
def _triplet_term(dist, a, p, n, margin, soft, coef):
    """Loss of triplet (a, p, n), x = dist[a, p] - dist[a, n]: log(1 + exp(x)) when `soft`, else
    max(0, x + margin). Adds dloss/dx to coef[a, p] and subtracts it from coef[a, n]."""
    x = dist[a, p] - dist[a, n]
    if soft:
        if x > 0.0:
            loss = x + np.log1p(np.exp(-x))
            slope = 1.0 / (1.0 + np.exp(-x))
        else:
            loss = np.log1p(np.exp(x))
            slope = np.exp(x) / (1.0 + np.exp(x))
    else:
        loss = max(x + margin, 0.0)
        slope = 1.0 if loss > 0.0 else 0.0
    coef[a, p] += slope
    coef[a, n] -= slope
    return loss


@njit(cache=True, parallel=True)
def mine_triplets(dist, labels, mode, margin, soft, coef, losses, counts):
    """Mine the triplets of a labelled batch from its distance matrix dist (M, M).

    Anchor a, positive p != a of a's label, negative n of another label. mode BATCH_ALL takes
    every such triplet; BATCH_HARD per anchor the positive with the largest distance and the
    negative with the smallest; SEMI_HARD per anchor-positive pair the negative with the
    smallest distance greater than dist[a, p], or the largest-distance negative when there is
    none. Ties go to the lowest index. Per anchor a: losses[a] = summed triplet losses,
    counts[a] = the number of terms they are averaged over (BATCH_ALL: triplets with a non-zero
    loss; BATCH_HARD: 1 if a has a positive and a negative; SEMI_HARD: its anchor-positive pairs
    that have a negative), and row a of coef (zero on entry) gets dloss/d dist[a, j].
    """
    m = dist.shape[0]
    for a in prange(m):
        total = 0.0
        count = 0
        if mode == BATCH_HARD:
            p = -1
            n = -1
            for j in range(m):
                if j == a:
                    continue
                if labels[j] == labels[a]:
                    if p < 0 or dist[a, j] > dist[a, p]:
                        p = j
                elif n < 0 or dist[a, j] < dist[a, n]:
                    n = j
            if p >= 0 and n >= 0:
                total = _triplet_term(dist, a, p, n, margin, soft, coef)
                count = 1
        else:
            for p in range(m):
                if p == a or labels[p] != labels[a]:
                    continue
                if mode == BATCH_ALL:
                    for n in range(m):
                        if labels[n] != labels[a]:
                            loss = _triplet_term(dist, a, p, n, margin, soft, coef)
                            total += loss
                            count += loss > 0.0
                    continue
                n = -1
                far = -1
                for j in range(m):
                    if labels[j] == labels[a]:
                        continue
                    if dist[a, j] > dist[a, p] and (n < 0 or dist[a, j] < dist[a, n]):
                        n = j
                    if far < 0 or dist[a, j] > dist[a, far]:
                        far = j
                if far >= 0:
                    total += _triplet_term(dist, a, p, n if n >= 0 else far, margin, soft, coef)
                    count += 1
        losses[a] = total
        counts[a] = count
