"""Per-channel affine maps over arrays viewed as (outer, dim, inner), as Scale, Bias and BatchNorm
broadcast their operands: channel d of every outer slice is scaled and shifted by scale[d], shift[d].

The loops run in parallel over the outer x dim planes, each plane in one pass. Arithmetic is in
the arrays' dtypes, multiply then add (no fused multiply-add), as numpy would compute it. Outputs
may alias inputs (in place): each element is read before it is written.
"""
import numpy as np
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small


@serial_when_small()
@njit(cache=True, parallel=True)
def channel_affine(x, scale, shift, y):
    """y[o, d, i] = x[o, d, i] * scale[d] + shift[d]."""
    outer, dim, inner = x.shape
    for plane in prange(outer * dim):
        o, d = plane // dim, plane % dim
        a, b = scale[d], shift[d]
        for i in range(inner):
            y[o, d, i] = x[o, d, i] * a + b


@serial_when_small()
@njit(cache=True, parallel=True)
def channel_affine_keeping_input(x, scale, shift, y, kept):
    """channel_affine that also copies x into `kept`, in the same pass (Scale in place needs its
    input for the scale gradient after the top has overwritten it)."""
    outer, dim, inner = x.shape
    for plane in prange(outer * dim):
        o, d = plane // dim, plane % dim
        a, b = scale[d], shift[d]
        for i in range(inner):
            v = x[o, d, i]
            kept[o, d, i] = v
            y[o, d, i] = v * a + b


@serial_when_small()
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def channel_affine_backward(x, dy, scale, scale_sums, shift_sums, dx, write_dx):
    """Per plane, in one pass: scale_sums[o, d] = Σ_i dy·x and shift_sums[o, d] = Σ_i dy (float64,
    to be summed over o for the parameter gradients), and dx = dy * scale[d] when write_dx."""
    outer, dim, inner = x.shape
    for plane in prange(outer * dim):
        o, d = plane // dim, plane % dim
        a = scale[d]
        sum_dy_x = np.float64(0.0)
        sum_dy = np.float64(0.0)
        for i in range(inner):
            g = dy[o, d, i]
            sum_dy_x += np.float64(g) * x[o, d, i]
            sum_dy += g
            if write_dx:
                dx[o, d, i] = g * a
        scale_sums[o, d] = sum_dy_x
        shift_sums[o, d] = sum_dy
