"""Layout kernels around the convolution GEMM.

The GEMM works on "rows" (M, N*P): channel-major, the batch side by side, as im2col
produces. Blobs are "batch" (N, M, P): image-major. These kernels convert between the two,
adding the bias on the way out and summing the bias gradient on the way back.
"""
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small


@serial_when_small(lambda *args: args[-1].size)   # the batch
@njit(cache=True, parallel=True)
def rows_to_batch(rows, bias, batch):
    """batch[n, m, p] = rows[m, n*P + p] + bias[m]."""
    num, channels, plane = batch.shape
    for task in prange(num * channels):
        n = task // channels
        m = task % channels
        batch[n, m] = rows[m, n * plane:(n + 1) * plane] + bias[m]


@serial_when_small()
@njit(cache=True, parallel=True)
def batch_to_rows(batch, rows):
    """rows[m, n*P + p] = batch[n, m, p]."""
    num, channels, plane = batch.shape
    for task in prange(num * channels):
        n = task // channels
        m = task % channels
        rows[m, n * plane:(n + 1) * plane] = batch[n, m]


@serial_when_small()
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def add_bias_grad(batch_diff, bias_diff):
    """bias_diff[m] += sum over n and p of batch_diff[n, m, p] (accumulated in float64; the
    sum may be reordered so that it vectorizes: a strict order ran at one add per 4 cycles)."""
    num, channels, plane = batch_diff.shape
    for m in prange(channels):
        total = 0.0
        for n in range(num):
            for p in range(plane):
                total += batch_diff[n, m, p]
        bias_diff[m] += total
