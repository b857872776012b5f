"""Per-channel affine maps over arrays viewed as (outer, dim, inner), as Scale and BatchNorm
broadcast their operands: channel d of every outer slice is scaled and shifted by scale[d], shift[d].

The loops run in parallel over the outer x dim planes, each plane in one pass. Arithmetic is in
the arrays' dtypes, multiply then add (no fused multiply-add), as numpy would compute it. Outputs
may be their inputs (in place): each element is read before it is written. An in-place call
then writes through the input array itself (the `in_place` branches, on equal data addresses):
LLVM vectorizes a loop that reads and writes one array at the same index, but runs the scalar
loop when the output is a second array overlapping the input (its runtime overlap check fails).
"""
import numpy as np
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small


@njit(inline="always")
def _affine_plane(x, o, d, a, b, y):
    for i in range(x.shape[2]):
        y[o, d, i] = x[o, d, i] * a + b


@njit(inline="always")
def _affine_plane_keeping_input(x, o, d, a, b, y, kept):
    for i in range(x.shape[2]):
        v = x[o, d, i]
        kept[o, d, i] = v
        y[o, d, i] = v * a + b


@njit(inline="always")
def _plane_sums_and_input_gradient(x, dy, o, d, a, dx):
    sum_dy_x = np.float64(0.0)
    sum_dy = np.float64(0.0)
    for i in range(x.shape[2]):
        g = dy[o, d, i]
        sum_dy_x += np.float64(g) * x[o, d, i]
        sum_dy += g
        dx[o, d, i] = g * a
    return sum_dy_x, sum_dy


@njit(inline="always")
def _plane_sums(x, dy, o, d):
    sum_dy_x = np.float64(0.0)
    sum_dy = np.float64(0.0)
    for i in range(x.shape[2]):
        g = dy[o, d, i]
        sum_dy_x += np.float64(g) * x[o, d, i]
        sum_dy += g
    return sum_dy_x, sum_dy


@serial_when_small()
@njit(cache=True, parallel=True)
def channel_affine(x, scale, shift, y):
    """y[o, d, i] = x[o, d, i] * scale[d] + shift[d]."""
    outer, dim, _ = x.shape
    in_place = x.ctypes.data == y.ctypes.data
    for plane in prange(outer * dim):
        o, d = plane // dim, plane % dim
        if in_place:
            _affine_plane(x, o, d, scale[d], shift[d], x)
        else:
            _affine_plane(x, o, d, scale[d], shift[d], y)


@serial_when_small()
@njit(cache=True, parallel=True)
def channel_affine_keeping_input(x, scale, shift, y, kept):
    """channel_affine that also copies x into `kept`, in the same pass (Scale in place needs its
    input for the scale gradient after the top has overwritten it)."""
    outer, dim, _ = x.shape
    in_place = x.ctypes.data == y.ctypes.data
    for plane in prange(outer * dim):
        o, d = plane // dim, plane % dim
        if in_place:
            _affine_plane_keeping_input(x, o, d, scale[d], shift[d], x, kept)
        else:
            _affine_plane_keeping_input(x, o, d, scale[d], shift[d], y, kept)


@serial_when_small()
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def channel_affine_backward(x, dy, scale, scale_sums, shift_sums, dx, write_dx):
    """Per plane, in one pass: scale_sums[o, d] = Σ_i dy·x and shift_sums[o, d] = Σ_i dy (float64,
    to be summed over o for the parameter gradients), and dx = dy * scale[d] when write_dx."""
    outer, dim, _ = x.shape
    in_place = dy.ctypes.data == dx.ctypes.data
    for plane in prange(outer * dim):
        o, d = plane // dim, plane % dim
        if not write_dx:
            sums = _plane_sums(x, dy, o, d)
        elif in_place:
            sums = _plane_sums_and_input_gradient(x, dy, o, d, scale[d], dy)
        else:
            sums = _plane_sums_and_input_gradient(x, dy, o, d, scale[d], dx)
        scale_sums[o, d], shift_sums[o, d] = sums
