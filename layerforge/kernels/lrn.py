"""Local response normalization, Caffe's two regions, over arrays of shape (N, C, H·W) or planes.

ACROSS_CHANNELS: scale = k + alpha/size · Σ x² over channels [c - pad, c + pad] (pad = (size-1)/2,
clipped to [0, C)), y = x · scale^-beta. The window sum runs along the channels, one block of
pixels per task, so the inner loops are contiguous.
WITHIN_CHANNEL: scale = 1 + alpha/size² · Σ x² over the size×size window clipped to the plane
(Caffe's average pooling with pad (size-1)/2 always divides by size²), y = x · scale^-beta.
Backward for both: dx = dy · scale^-beta - 2·alpha·beta/window · x · Σ (dy·y/scale) over the same
(symmetric) windows, window = size or size². Sums accumulate in float64.
"""
import numpy as np
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small

PIXEL_BLOCK = 512


@njit(cache=True, inline="always")
def _negative_power(s, beta):
    """s ** -beta; for beta = 0.75 (AlexNet's, Caffe's default) as 1 / sqrt(s · sqrt(s)),
    several times faster than pow and as exact within a few ulps."""
    if beta == 0.75:
        return 1.0 / np.sqrt(s * np.sqrt(s))
    return s ** -beta


@njit(cache=True)
def _channel_window_sums(values, size, total, out_sum):
    """out_sum[c, i] = Σ values[c', i] for c' in [c - pad, c + pad] ∩ [0, C), via a running sum."""
    channels = values.shape[0]
    pad = (size - 1) // 2
    total[:] = 0.0
    for c in range(min(pad, channels)):
        for i in range(values.shape[1]):
            total[i] += values[c, i]
    for c in range(channels):
        head = c + pad
        tail = c - pad - 1
        for i in range(values.shape[1]):
            if head < channels:
                total[i] += values[head, i]
            if tail >= 0:
                total[i] -= values[tail, i]
            out_sum[c, i] = total[i]


@serial_when_small()
@njit(cache=True, parallel=True)
def lrn_across_channels_forward(x, size, alpha, beta, k, scale, y):
    """scale = k + alpha/size · window sum of x² over channels; y = x · scale^-beta."""
    num, channels, pixels = x.shape
    blocks = (pixels + PIXEL_BLOCK - 1) // PIXEL_BLOCK
    for task in prange(num * blocks):
        n = task // blocks
        p0 = (task % blocks) * PIXEL_BLOCK
        p1 = min(p0 + PIXEL_BLOCK, pixels)
        squares = np.empty((channels, p1 - p0))
        sums = np.empty((channels, p1 - p0))
        total = np.empty(p1 - p0)
        for c in range(channels):
            for p in range(p0, p1):
                v = np.float64(x[n, c, p])
                squares[c, p - p0] = v * v
        _channel_window_sums(squares, size, total, sums)
        for c in range(channels):
            for p in range(p0, p1):
                s = k + alpha / size * sums[c, p - p0]
                scale[n, c, p] = s
                y[n, c, p] = x[n, c, p] * _negative_power(s, beta)


@serial_when_small()
@njit(cache=True, parallel=True)
def lrn_across_channels_backward(x, y, scale, dy, size, alpha, beta, dx):
    """dx = dy · scale^-beta - 2·alpha·beta/size · x · window sum of dy·y/scale over channels."""
    num, channels, pixels = x.shape
    blocks = (pixels + PIXEL_BLOCK - 1) // PIXEL_BLOCK
    for task in prange(num * blocks):
        n = task // blocks
        p0 = (task % blocks) * PIXEL_BLOCK
        p1 = min(p0 + PIXEL_BLOCK, pixels)
        ratios = np.empty((channels, p1 - p0))
        sums = np.empty((channels, p1 - p0))
        total = np.empty(p1 - p0)
        for c in range(channels):
            for p in range(p0, p1):
                ratios[c, p - p0] = np.float64(dy[n, c, p]) * y[n, c, p] / scale[n, c, p]
        _channel_window_sums(ratios, size, total, sums)
        coefficient = 2.0 * alpha * beta / size
        for c in range(channels):
            for p in range(p0, p1):
                dx[n, c, p] = (dy[n, c, p] * _negative_power(np.float64(scale[n, c, p]), beta)
                               - coefficient * x[n, c, p] * sums[c, p - p0])


@njit(cache=True)
def _box_sums(values, size, rows, out_sum):
    """out_sum[h, w] = Σ values over the size×size window centred on (h, w), clipped to the plane."""
    height, width = values.shape
    pad = (size - 1) // 2
    for h in range(height):
        for w in range(width):
            total = 0.0
            for j in range(max(w - pad, 0), min(w + pad + 1, width)):
                total += values[h, j]
            rows[h, w] = total
    for h in range(height):
        for w in range(width):
            total = 0.0
            for i in range(max(h - pad, 0), min(h + pad + 1, height)):
                total += rows[i, w]
            out_sum[h, w] = total


@serial_when_small()
@njit(cache=True, parallel=True)
def lrn_within_channel_forward(x, size, alpha, beta, scale, y):
    """Planes x (P, H, W): scale = 1 + alpha/size² · box sum of x²; y = x · scale^-beta."""
    planes, height, width = x.shape
    for i in prange(planes):
        squares = np.empty((height, width))
        for h in range(height):
            for w in range(width):
                v = np.float64(x[i, h, w])
                squares[h, w] = v * v
        rows = np.empty((height, width))
        sums = np.empty((height, width))
        _box_sums(squares, size, rows, sums)
        for h in range(height):
            for w in range(width):
                s = 1.0 + alpha / (size * size) * sums[h, w]
                scale[i, h, w] = s
                y[i, h, w] = x[i, h, w] * _negative_power(s, beta)


@serial_when_small()
@njit(cache=True, parallel=True)
def lrn_within_channel_backward(x, y, scale, dy, size, alpha, beta, dx):
    """dx = dy · scale^-beta - 2·alpha·beta/size² · x · box sum of dy·y/scale."""
    planes, height, width = x.shape
    coefficient = 2.0 * alpha * beta / (size * size)
    for i in prange(planes):
        ratios = np.empty((height, width))
        for h in range(height):
            for w in range(width):
                ratios[h, w] = np.float64(dy[i, h, w]) * y[i, h, w] / scale[i, h, w]
        rows = np.empty((height, width))
        sums = np.empty((height, width))
        _box_sums(ratios, size, rows, sums)
        for h in range(height):
            for w in range(width):
                dx[i, h, w] = (dy[i, h, w] * _negative_power(np.float64(scale[i, h, w]), beta)
                               - coefficient * x[i, h, w] * sums[h, w])
