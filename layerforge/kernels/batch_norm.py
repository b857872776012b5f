"""Batch normalization over arrays viewed as (N, C, S): statistics per channel C over N and S.

Sums accumulate in float64 whatever the array dtype (np.float64 accumulators: a Python float
would let .py_func accumulate float32 elements in float32). Forward and backward may run in place
(y is x, dx is dy): each element is read before it is written.
"""
import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def batch_norm_statistics(x, mean, variance):
    """mean[c] = E[x[:, c]], variance[c] = E[(x[:, c] - mean[c])²] (biased; two passes, no cancellation)."""
    num, channels, spatial = x.shape
    m = num * spatial
    for c in prange(channels):
        total = np.float64(0.0)
        for n in range(num):
            for s in range(spatial):
                total += x[n, c, s]
        mu = total / m
        squares = np.float64(0.0)
        for n in range(num):
            for s in range(spatial):
                d = x[n, c, s] - mu
                squares += d * d
        mean[c] = mu
        variance[c] = squares / m


@njit(cache=True, parallel=True)
def batch_norm_forward(x, mean, std, y):
    """y = (x - mean[c]) / std[c]."""
    num, channels, spatial = x.shape
    for c in prange(channels):
        mu = mean[c]
        inv = 1.0 / std[c]
        for n in range(num):
            for s in range(spatial):
                y[n, c, s] = (x[n, c, s] - mu) * inv


@njit(cache=True, parallel=True)
def batch_norm_backward(y, dy, std, dx):
    """dx = (dy - E[dy] - E[dy·y]·y) / std[c], with y the normalized forward output and E per channel."""
    num, channels, spatial = y.shape
    m = num * spatial
    for c in prange(channels):
        sum_dy = np.float64(0.0)
        sum_dy_y = np.float64(0.0)
        for n in range(num):
            for s in range(spatial):
                sum_dy += dy[n, c, s]
                sum_dy_y += dy[n, c, s] * y[n, c, s]
        mean_dy = sum_dy / m
        mean_dy_y = sum_dy_y / m
        inv = 1.0 / std[c]
        for n in range(num):
            for s in range(spatial):
                dx[n, c, s] = (dy[n, c, s] - mean_dy - mean_dy_y * y[n, c, s]) * inv
