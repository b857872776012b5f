"""Direct stride-1 convolution for images with few channels (LeNet's and the Siamese conv1).

With one input channel im2col's GEMM is long and thin (K = kernel area), and most of its
time goes to writing and reading the column matrix. Here each output plane is a sum of
shifted copies of the input plane. Computed over the full padded width ("span" =
(out_h - 1) * Wp + out_w values; the columns beyond out_w are discarded), every shift is
one contiguous run, and the taps of one kernel row are summed in registers: one long
vectorized loop per kernel row (55 GFLOP/s per core on conv1, 3x im2col + GEMM).
Images come zero-padded by the caller: (N, C, Hp, Wp).
"""
import numpy as np
from numba import njit, prange, uint64

from layerforge.kernels.threads import serial_when_small


@njit(cache=True, fastmath=True)
def _add_row(taps, src, dst, size):
    """dst[f] += sum over j of taps[j] * src[f + j], for f < size.

    Offsets come as slices (src[at:]) and the loop index is unsigned: mixed signed and
    unsigned index arithmetic, or negative-index wraparound, stops the loop vectorizing
    (10x slower, measured). 3- and 5-tap bodies keep the taps in registers; other widths
    add one tap at a time."""
    if len(taps) == 5:
        w0, w1, w2, w3, w4 = taps[0], taps[1], taps[2], taps[3], taps[4]
        for f in range(uint64(size)):
            dst[f] += w0 * src[f] + w1 * src[f + 1] + w2 * src[f + 2] + w3 * src[f + 3] + w4 * src[f + 4]
    elif len(taps) == 3:
        w0, w1, w2 = taps[0], taps[1], taps[2]
        for f in range(uint64(size)):
            dst[f] += w0 * src[f] + w1 * src[f + 1] + w2 * src[f + 2]
    else:
        for j in range(len(taps)):
            w = taps[j]
            shifted = src[j:]
            for f in range(uint64(size)):
                dst[f] += w * shifted[f]


@njit(cache=True, fastmath=True)
def _row_dots(diff, src, size, out):
    """out[j] += sum over f < size of diff[f] * src[f + j]: the sum of one row in the data's
    type (as a GEMM would; float64 conversions halve the speed), added into float64 `out`."""
    if len(out) == 5:
        t0 = t1 = t2 = t3 = t4 = diff.dtype.type(0)
        for f in range(uint64(size)):
            d = diff[f]
            t0 += d * src[f]
            t1 += d * src[f + 1]
            t2 += d * src[f + 2]
            t3 += d * src[f + 3]
            t4 += d * src[f + 4]
        out[0] += t0
        out[1] += t1
        out[2] += t2
        out[3] += t3
        out[4] += t4
    else:
        for j in range(len(out)):
            total = diff.dtype.type(0)
            shifted = src[j:]
            for f in range(uint64(size)):
                total += diff[f] * shifted[f]
            out[j] += total


_BLOCK = 4   # outputs per weight-gradient task


@njit(cache=True, fastmath=True)
def _row_dots_block(diff, src, size, out):
    """_row_dots for 5 taps and the _BLOCK = 4 diff rows diff[0..3] at once: out[b, j] +=
    sum over f < size of diff[b, f] * src[f + j]. The four share each load of src, and the 20
    sums stay in registers (1.5x faster than four _row_dots)."""
    d0, d1, d2, d3 = diff[0], diff[1], diff[2], diff[3]
    a0 = a1 = a2 = a3 = a4 = b0 = b1 = b2 = b3 = b4 = d0.dtype.type(0)
    c0 = c1 = c2 = c3 = c4 = e0 = e1 = e2 = e3 = e4 = d0.dtype.type(0)
    for f in range(uint64(size)):
        s0, s1, s2, s3, s4 = src[f], src[f + 1], src[f + 2], src[f + 3], src[f + 4]
        x = d0[f]
        a0, a1, a2, a3, a4 = a0 + x * s0, a1 + x * s1, a2 + x * s2, a3 + x * s3, a4 + x * s4
        x = d1[f]
        b0, b1, b2, b3, b4 = b0 + x * s0, b1 + x * s1, b2 + x * s2, b3 + x * s3, b4 + x * s4
        x = d2[f]
        c0, c1, c2, c3, c4 = c0 + x * s0, c1 + x * s1, c2 + x * s2, c3 + x * s3, c4 + x * s4
        x = d3[f]
        e0, e1, e2, e3, e4 = e0 + x * s0, e1 + x * s1, e2 + x * s2, e3 + x * s3, e4 + x * s4
    for j, (a, b, c, e) in enumerate(((a0, b0, c0, e0), (a1, b1, c1, e1), (a2, b2, c2, e2),
                                      (a3, b3, c3, e3), (a4, b4, c4, e4))):
        out[0, j] += a
        out[1, j] += b
        out[2, j] += c
        out[3, j] += e


@njit(cache=True)
def _copy_rows(src, src_row, dst, dst_row, rows, cols):
    """dst[r * dst_row + x] = src[r * src_row + x] for r < rows, x < cols (full width <-> cropped)."""
    for r in range(rows):
        a = src[r * src_row:]
        b = dst[r * dst_row:]
        for x in range(uint64(cols)):
            b[x] = a[x]


@njit(cache=True, fastmath=True)
def _row_sum(values):
    """The sum of `values`, in their type (the gap columns of a full-width row hold zeros)."""
    total = values.dtype.type(0)
    for f in range(uint64(len(values))):
        total += values[f]
    return total


@serial_when_small(lambda *args: args[-1].size)   # the top
@njit(cache=True, parallel=True)
def direct_conv(images, weight, bias, top):
    """top[n, k] = bias[k] + sum over c, i, j of weight[k, c, i, j] * images[n, c, i:, j:] (cropped)."""
    num, channels, height, width = images.shape
    num_output, _, kernel_h, _ = weight.shape
    out_h, out_w = top.shape[2:]
    span = (out_h - 1) * width + out_w
    src = images.reshape(-1)
    for n in prange(num):
        acc = np.empty(span, top.dtype)
        for k in range(num_output):
            acc[:] = bias[k]
            for c in range(channels):
                for i in range(kernel_h):
                    _add_row(weight[k, c, i], src[((n * channels + c) * height + i) * width:], acc, span)
            _copy_rows(acc, width, top[n, k].reshape(-1), out_w, out_h, out_w)


@njit(cache=True, parallel=True)
def direct_conv_weight_grad(images, top_diff, partial, bias_partial):
    """partial[chunk, k, c, i, j] = sum over the chunk's images n of top_diff[n, k] . images[n, c, i:, j:],
    and bias_partial[chunk, k] = the sum of those top_diff[n, k]; the caller adds the sums over
    chunks to the gradients (one chunk per task: no races). A task takes _BLOCK outputs k, whose
    row dots share their loads of the image rows (_row_dots_block)."""
    num, channels, height, width = images.shape
    chunks, num_output, _, kernel_h, kernel_w = partial.shape
    out_h, out_w = top_diff.shape[2:]
    span = (out_h - 1) * width + out_w
    src = images.reshape(-1)
    blocks = (num_output + _BLOCK - 1) // _BLOCK
    for task in prange(chunks * blocks):
        chunk = task // blocks
        k0 = task % blocks * _BLOCK
        size = min(num_output, k0 + _BLOCK) - k0
        diff = np.zeros((_BLOCK, span), top_diff.dtype)
        sums = np.zeros((channels, kernel_h, _BLOCK, kernel_w))
        bias_sums = np.zeros(_BLOCK)
        for n in range(chunk * num // chunks, (chunk + 1) * num // chunks):
            for b in range(size):
                _copy_rows(top_diff[n, k0 + b].reshape(-1), out_w, diff[b], width, out_h, out_w)
                bias_sums[b] += _row_sum(diff[b])
            for c in range(channels):
                for i in range(kernel_h):
                    row = src[((n * channels + c) * height + i) * width:]
                    if size == _BLOCK and kernel_w == 5:
                        _row_dots_block(diff, row, span, sums[c, i])
                    else:
                        for b in range(size):
                            _row_dots(diff[b], row, span, sums[c, i, b])
        for b in range(size):
            bias_partial[chunk, k0 + b] = bias_sums[b]
            for c in range(channels):
                for i in range(kernel_h):
                    for j in range(kernel_w):
                        partial[chunk, k0 + b, c, i, j] = sums[c, i, b, j]


@njit(cache=True, parallel=True)
def direct_conv_data_grad(top_diff, weight, images_diff):
    """Overwrite images_diff (N, C, Hp, Wp) with the adjoint of direct_conv: every top_diff value
    added back, times its weight, to the pixels it was computed from."""
    num, channels, height, width = images_diff.shape
    num_output, _, kernel_h, kernel_w = weight.shape
    out_h, out_w = top_diff.shape[2:]
    span = (out_h - 1) * width + out_w
    for task in prange(num * channels):
        n = task // channels
        c = task % channels
        plane = images_diff[n, c].reshape(-1)
        plane[:] = 0
        # top_diff over the full width, with kernel_w - 1 zeros before and after: pixel g of a
        # kernel row sums taps[j] * diff[g - j], a correlation with the flipped taps.
        diff = np.zeros(span + 2 * (kernel_w - 1), top_diff.dtype)
        flipped = np.empty(kernel_w, weight.dtype)
        for k in range(num_output):
            _copy_rows(top_diff[n, k].reshape(-1), out_w, diff[kernel_w - 1:], width, out_h, out_w)
            for i in range(kernel_h):
                for j in range(kernel_w):
                    flipped[j] = weight[k, c, i, kernel_w - 1 - j]
                _add_row(flipped, diff, plane[i * width:], span + kernel_w - 1)
