"""Max and average pooling over planes (N*C, H, W) with Caffe's window rules.

A window starts at out * stride - pad. MAX looks only at pixels inside the image.
AVE divides by the window size clipped to the padded image (H + pad, W + pad), then
sums only the pixels inside the image, exactly as Caffe does.
"""
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small


@serial_when_small()
@njit(cache=True, parallel=True)
def max_pool_forward(bottom, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, top, argmax):
    """top[i, py, px] = max of the window; argmax holds its flat index y * W + x in the plane."""
    planes, height, width = bottom.shape
    _, pooled_h, pooled_w = top.shape
    for i in prange(planes):
        for py in range(pooled_h):
            y0 = max(py * stride_h - pad_h, 0)
            y1 = min(py * stride_h - pad_h + kernel_h, height)
            for px in range(pooled_w):
                x0 = max(px * stride_w - pad_w, 0)
                x1 = min(px * stride_w - pad_w + kernel_w, width)
                best = bottom[i, y0, x0]
                best_index = y0 * width + x0
                for y in range(y0, y1):
                    for x in range(x0, x1):
                        if bottom[i, y, x] > best:
                            best = bottom[i, y, x]
                            best_index = y * width + x
                top[i, py, px] = best
                argmax[i, py, px] = best_index


@serial_when_small(lambda *args: args[-1].size)   # the bottom diff
@njit(cache=True, parallel=True)
def max_pool_backward(top_diff, argmax, bottom_diff):
    """Overwrite bottom_diff: each top gradient goes to the pixel its window's max came from.

    Zeroing a whole plane and then adding at the flat argmax indices is 3x faster than
    writing each pixel once from its window (a vectorized fill, one store per window)."""
    planes, pooled_h, pooled_w = top_diff.shape
    plane_size = bottom_diff.shape[1] * bottom_diff.shape[2]
    flat = bottom_diff.reshape(planes, plane_size)
    for i in prange(planes):
        plane = flat[i]
        for k in range(plane_size):
            plane[k] = 0
        for py in range(pooled_h):
            for px in range(pooled_w):
                plane[argmax[i, py, px]] += top_diff[i, py, px]


@serial_when_small()
@njit(cache=True, parallel=True)
def ave_pool_forward(bottom, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, top):
    """top[i, py, px] = window sum / window size clipped to the padded image."""
    planes, height, width = bottom.shape
    _, pooled_h, pooled_w = top.shape
    for i in prange(planes):
        for py in range(pooled_h):
            y0 = py * stride_h - pad_h
            y1 = min(y0 + kernel_h, height + pad_h)
            for px in range(pooled_w):
                x0 = px * stride_w - pad_w
                x1 = min(x0 + kernel_w, width + pad_w)
                pool_size = (y1 - y0) * (x1 - x0)
                total = 0.0
                for y in range(max(y0, 0), min(y1, height)):
                    for x in range(max(x0, 0), min(x1, width)):
                        total += bottom[i, y, x]
                top[i, py, px] = total / pool_size


@serial_when_small(lambda *args: args[-1].size)   # the bottom diff
@njit(cache=True, parallel=True)
def ave_pool_backward(top_diff, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, bottom_diff):
    """Overwrite bottom_diff with each window's top gradient spread evenly (same divisor as forward)."""
    planes, height, width = bottom_diff.shape
    _, pooled_h, pooled_w = top_diff.shape
    for i in prange(planes):
        bottom_diff[i] = 0
        for py in range(pooled_h):
            y0 = py * stride_h - pad_h
            y1 = min(y0 + kernel_h, height + pad_h)
            for px in range(pooled_w):
                x0 = px * stride_w - pad_w
                x1 = min(x0 + kernel_w, width + pad_w)
                share = top_diff[i, py, px] / ((y1 - y0) * (x1 - x0))
                for y in range(max(y0, 0), min(y1, height)):
                    for x in range(max(x0, 0), min(x1, width)):
                        bottom_diff[i, y, x] += share


@serial_when_small()
@njit(cache=True, parallel=True)
def max_pool_2x2_forward(bottom, top, argmax):
    """max_pool_forward for kernel 2, stride 2, no padding, when H = 2 * pooled_h and
    W = 2 * pooled_w: no bounds to clip, the four reads unrolled (same ties: first wins)."""
    planes, height, width = bottom.shape
    _, pooled_h, pooled_w = top.shape
    for i in prange(planes):
        for py in range(pooled_h):
            y = 2 * py
            for px in range(pooled_w):
                x = 2 * px
                best = bottom[i, y, x]
                index = y * width + x
                if bottom[i, y, x + 1] > best:
                    best = bottom[i, y, x + 1]
                    index = y * width + x + 1
                if bottom[i, y + 1, x] > best:
                    best = bottom[i, y + 1, x]
                    index = (y + 1) * width + x
                if bottom[i, y + 1, x + 1] > best:
                    best = bottom[i, y + 1, x + 1]
                    index = (y + 1) * width + x + 1
                top[i, py, px] = best
                argmax[i, py, px] = index

