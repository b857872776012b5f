"""im2col / col2im for 2-D convolution over a whole batch.

The column matrix has one row per (channel, kernel_y, kernel_x), Caffe's order, and one
column per (image, out_y, out_x): shape (C * kh * kw, N * out_h * out_w). With the batch
laid side by side, a convolution is a single large GEMM instead of N small ones.
"""
from numba import njit, prange


@njit(cache=True)
def out_size(size, kernel, stride, pad, dilation):
    """Caffe's convolution output size along one axis."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


@njit(cache=True)
def _valid_range(offset, size, stride, out):
    """The outputs o in [lo, hi) whose input o * stride + offset lies inside [0, size)."""
    lo = max(0, -(offset // stride))
    hi = min(out, (size - 1 - offset) // stride + 1) if size - 1 - offset >= 0 else 0
    return lo, max(lo, hi)


@njit(cache=True, parallel=True)
def im2col(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
           dilation_h, dilation_w, col):
    """Fill `col` (C*kh*kw, N*out_h*out_w) from `images` (N, C, H, W); padding reads as 0."""
    num, channels, height, width = images.shape
    out_h = out_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = out_size(width, kernel_w, stride_w, pad_w, dilation_w)
    rows = channels * kernel_h * kernel_w
    for task in prange(num * rows):
        n = task // rows
        row = task % rows
        c = row // (kernel_h * kernel_w)
        ki = (row // kernel_w) % kernel_h
        kj = row % kernel_w
        x_offset = kj * dilation_w - pad_w
        x_lo, x_hi = _valid_range(x_offset, width, stride_w, out_w)
        for oy in range(out_h):
            y = oy * stride_h - pad_h + ki * dilation_h
            start = (n * out_h + oy) * out_w
            if y < 0 or y >= height:
                col[row, start:start + out_w] = 0
                continue
            col[row, start:start + x_lo] = 0
            for ox in range(x_lo, x_hi):
                col[row, start + ox] = images[n, c, y, ox * stride_w + x_offset]
            col[row, start + x_hi:start + out_w] = 0


@njit(cache=True, parallel=True)
def col2im(col, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
           dilation_h, dilation_w, images):
    """Overwrite `images` (N, C, H, W) with the sum of `col` entries that im2col read from each pixel."""
    num, channels, height, width = images.shape
    out_h = out_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = out_size(width, kernel_w, stride_w, pad_w, dilation_w)
    for task in prange(num * channels):
        n = task // channels
        c = task % channels
        images[n, c] = 0
        for ki in range(kernel_h):
            for kj in range(kernel_w):
                row = (c * kernel_h + ki) * kernel_w + kj
                x_offset = kj * dilation_w - pad_w
                x_lo, x_hi = _valid_range(x_offset, width, stride_w, out_w)
                for oy in range(out_h):
                    y = oy * stride_h - pad_h + ki * dilation_h
                    if y < 0 or y >= height:
                        continue
                    start = (n * out_h + oy) * out_w
                    for ox in range(x_lo, x_hi):
                        images[n, c, y, ox * stride_w + x_offset] += col[row, start + ox]
