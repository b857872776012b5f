"""Batch normalization over arrays viewed as (N, C, S): statistics per channel C over N and S.

Each kernel runs one channel at a time per thread and makes at most two passes over it: the
first reduces, the second writes, reading the channel again from cache (a channel of the
Omniglot net's conv1, 128 x 28 x 28 float32, is 400 KB against 1 MB of L2 per core). Sums
accumulate in float64 whatever the array dtype (np.float64 accumulators: a Python float would
let .py_func accumulate float32 elements in float32); fastmath "reassoc" lets LLVM vectorize
them, into several partial sums. Kernels may run in place (y is x, dx is dy): each element is
read before it is written.
"""
import math

import numpy as np
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small


@serial_when_small()
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def batch_norm_train_forward(x, eps, mean, variance, std, x_norm, y):
    """Batch statistics and normalization: mean[c], the biased variance[c], std[c] =
    sqrt(variance[c] + eps), then x_norm = y = (x - mean[c]) / std[c].

    One pass for the statistics: sums of d and d² with d = x - x[0, c, 0], a sample of the
    channel, so the variance E[d²] - E[d]² does not cancel when the mean is large against the
    spread (the first element is typically within a few standard deviations of the mean).
    """
    num, channels, spatial = x.shape
    m = num * spatial
    for c in prange(channels):
        shift = np.float64(x[0, c, 0]) if m > 0 else np.float64(0.0)
        total = np.float64(0.0)
        squares = np.float64(0.0)
        for n in range(num):
            for s in range(spatial):
                d = np.float64(x[n, c, s]) - shift
                total += d
                squares += d * d
        mean_shifted = total / m
        var = max(squares / m - mean_shifted * mean_shifted, 0.0)
        mu = shift + mean_shifted
        sigma = math.sqrt(var + eps)
        mean[c] = mu
        variance[c] = var
        std[c] = sigma
        inv = 1.0 / sigma
        for n in range(num):
            for s in range(spatial):
                v = (x[n, c, s] - mu) * inv
                x_norm[n, c, s] = v
                y[n, c, s] = v


@serial_when_small()
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def batch_norm_backward(y, dy, std, dx):
    """dx = (dy - E[dy] - E[dy·y]·y) / std[c], with y the normalized forward output and E per channel."""
    num, channels, spatial = y.shape
    m = num * spatial
    for c in prange(channels):
        sum_dy = np.float64(0.0)
        sum_dy_y = np.float64(0.0)
        for n in range(num):
            for s in range(spatial):
                g = np.float64(dy[n, c, s])
                sum_dy += g
                sum_dy_y += g * y[n, c, s]
        mean_dy = sum_dy / m
        mean_dy_y = sum_dy_y / m
        inv = 1.0 / std[c]
        for n in range(num):
            for s in range(spatial):
                dx[n, c, s] = (dy[n, c, s] - mean_dy - mean_dy_y * y[n, c, s]) * inv
