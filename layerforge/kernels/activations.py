"""Elementwise activation kernels over flat arrays (outputs passed in; may alias the inputs).

Every loop reads element i of its inputs before writing element i of its output, so a
layer running in place may pass the same array as input and output.

Sigmoid and TanH forward are not here: numpy's SIMD tanh beats Numba's scalar libm calls
(737k float32 values on 2 cores: np.tanh 0.12 ms vs a prange math.tanh kernel 5.8 ms;
sigmoid as 0.5 * tanh(x / 2) + 0.5 in numpy 0.26 ms vs a math.exp kernel 0.84 ms), so
those layers call numpy ufuncs and only their backward is a kernel.
"""
import math

from numba import njit, prange

from layerforge.kernels.threads import serial_when_small


@serial_when_small()
@njit(cache=True, parallel=True)
def relu_forward(x, negative_slope, y):
    """y = x where x > 0, else negative_slope * x."""
    for i in prange(x.size):
        v = x[i]
        y[i] = v if v > 0 else v * negative_slope


@serial_when_small()
@njit(cache=True, parallel=True)
def relu_backward(x, dy, negative_slope, dx):
    """dx = dy where x > 0, else negative_slope * dy (x may be the top when in place, slope >= 0)."""
    for i in prange(x.size):
        g = dy[i]
        dx[i] = g if x[i] > 0 else g * negative_slope


@serial_when_small()
@njit(cache=True, parallel=True)
def sigmoid_backward(y, dy, dx):
    """dx = dy * y * (1 - y), from the top data alone."""
    for i in prange(y.size):
        v = y[i]
        dx[i] = dy[i] * v * (1.0 - v)


@serial_when_small()
@njit(cache=True, parallel=True)
def tanh_backward(y, dy, dx):
    """dx = dy * (1 - y^2), from the top data alone."""
    for i in prange(y.size):
        v = y[i]
        dx[i] = dy[i] * (1.0 - v * v)


@serial_when_small()
@njit(cache=True, parallel=True)
def elu_forward(x, alpha, y):
    """y = x where x > 0, else alpha * (exp(x) - 1)."""
    for i in prange(x.size):
        v = x[i]
        y[i] = v if v > 0 else alpha * (math.exp(v) - 1.0)


@serial_when_small()
@njit(cache=True, parallel=True)
def elu_backward(x, y, dy, alpha, dx):
    """dx = dy where x > 0, else dy * (y + alpha) (x may be the top when in place, alpha >= 0)."""
    for i in prange(y.size):
        g = dy[i]
        dx[i] = g if x[i] > 0 else g * (y[i] + alpha)


@serial_when_small()
@njit(cache=True, parallel=True)
def prelu_forward(x, slope, y):
    """x, y: (N, C, D); slope: (C,). y = x where x > 0, else slope[c] * x."""
    n, channels, dim = x.shape
    for c in prange(channels):
        a = slope[c]
        for b in range(n):
            for j in range(dim):
                v = x[b, c, j]
                y[b, c, j] = v if v > 0 else v * a


@serial_when_small()
@njit(cache=True, parallel=True)
def prelu_backward(x, dy, slope, dx, slope_diff, propagate_down):
    """Add dL/dslope[c] = sum(dy * x where x <= 0) into slope_diff (C,); set dx if propagate_down.

    x is the forward input (a copy when the layer ran in place); dx may alias dy.
    """
    n, channels, dim = x.shape
    for c in prange(channels):
        a = slope[c]
        acc = 0.0
        for b in range(n):
            for j in range(dim):
                v = x[b, c, j]
                g = dy[b, c, j]
                if v <= 0:
                    acc += g * v
                if propagate_down:
                    dx[b, c, j] = g if v > 0 else g * a
        slope_diff[c] += acc

