"""Softmax kernels over an (outer, channels, inner) view: the softmax runs along axis 1.

Both kernels read an element before writing the same index of the output and never
read it again, so the output may be the input array (in-place Softmax).
"""
import numpy as np
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small


@serial_when_small()
@njit(parallel=True, cache=True)
def softmax_forward(x, y):
    """y = exp(x - max) / sum(exp(x - max)) along axis 1; subtracting the max keeps exp finite."""
    outer, channels, inner = x.shape
    for o in prange(outer):
        peak = x[o, 0].copy()
        for c in range(1, channels):
            for i in range(inner):
                peak[i] = max(peak[i], x[o, c, i])
        total = np.zeros_like(peak)
        for c in range(channels):
            for i in range(inner):
                value = np.exp(x[o, c, i] - peak[i])
                y[o, c, i] = value
                total[i] += value
        for c in range(channels):
            for i in range(inner):
                y[o, c, i] /= total[i]


@serial_when_small()
@njit(parallel=True, cache=True)
def softmax_backward(y, dy, dx):
    """dx = y * (dy - sum(dy * y)) along axis 1, the softmax Jacobian applied to dy."""
    outer, channels, inner = y.shape
    for o in prange(outer):
        dot = np.zeros_like(y[o, 0])
        for c in range(channels):
            for i in range(inner):
                dot[i] += dy[o, c, i] * y[o, c, i]
        for c in range(channels):
            for i in range(inner):
                dx[o, c, i] = y[o, c, i] * (dy[o, c, i] - dot[i])
