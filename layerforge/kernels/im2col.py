"""im2col / col2im for convolution over a whole batch: 2-D kernels, and general N-D ones.

The column matrix has one row per (channel, kernel_y, kernel_x), Caffe's order, and one
column per (image, out_y, out_x): shape (C * kh * kw, N * out_h * out_w). With the batch
laid side by side, a convolution is a single large GEMM instead of N small ones.
The 2-D kernels work on flat views and walk the column matrix row by row, in chunks of
images, so that its large memory is streamed sequentially by both threads. The N-D kernels
(1-D, 3-D, ...: Caffe's im2col_nd) use the same layout with the kernel offsets of every
spatial axis, row-major, in place of (kernel_y, kernel_x).
"""
import numpy as np
from numba import njit, prange

from layerforge.kernels.threads import serial_when_small

_CHUNK = 16  # images per parallel task


@njit(cache=True)
def out_size(size, kernel, stride, pad, dilation):
    """Caffe's convolution output size along one axis."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


@njit(cache=True)
def _valid_range(offset, size, stride, out):
    """The outputs o in [lo, hi) whose input o * stride + offset lies inside [0, size)."""
    lo = min(max(0, -(offset // stride)), out)
    hi = min(out, (size - 1 - offset) // stride + 1) if size - 1 - offset >= 0 else 0
    return lo, max(lo, hi)


@serial_when_small(lambda *args: args[-1].size)   # the column matrix
@njit(cache=True, parallel=True)
def im2col(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
           dilation_h, dilation_w, col):
    """Fill `col` (C*kh*kw, N*out_h*out_w) from `images` (N, C, H, W); padding reads as 0."""
    num, channels, height, width = images.shape
    out_h = out_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = out_size(width, kernel_w, stride_w, pad_w, dilation_w)
    plane = out_h * out_w
    src = images.reshape(-1)
    dst = col.reshape(-1)
    chunks = (num + _CHUNK - 1) // _CHUNK
    for task in prange(col.shape[0] * chunks):
        row = task // chunks
        chunk = task % chunks
        c = row // (kernel_h * kernel_w)
        y_offset = (row // kernel_w) % kernel_h * dilation_h - pad_h
        x_offset = row % kernel_w * dilation_w - pad_w
        x_lo, x_hi = _valid_range(x_offset, width, stride_w, out_w)
        for n in range(chunk * _CHUNK, min(num, (chunk + 1) * _CHUNK)):
            image = (n * channels + c) * height * width
            out = row * num * plane + n * plane
            for oy in range(out_h):
                y = oy * stride_h + y_offset
                if y < 0 or y >= height:
                    dst[out:out + out_w] = 0
                else:
                    start = image + y * width + x_offset
                    dst[out:out + x_lo] = 0
                    if stride_w == 1:
                        dst[out + x_lo:out + x_hi] = src[start + x_lo:start + x_hi]
                    else:
                        for ox in range(x_lo, x_hi):
                            dst[out + ox] = src[start + ox * stride_w]
                    dst[out + x_hi:out + out_w] = 0
                out += out_w


@serial_when_small(lambda *args: args[-1].size)   # the images
@njit(cache=True, parallel=True)
def col2im(col, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
           dilation_h, dilation_w, images):
    """Overwrite `images` (N, C, H, W) with the sum of `col` entries that im2col read from each pixel."""
    num, channels, height, width = images.shape
    out_h = out_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = out_size(width, kernel_w, stride_w, pad_w, dilation_w)
    plane = out_h * out_w
    src = col.reshape(-1)
    dst = images.reshape(-1)
    chunks = (num + _CHUNK - 1) // _CHUNK
    for task in prange(channels * chunks):  # one channel of a chunk of images: no write races
        c = task // chunks
        n0 = task % chunks * _CHUNK
        n1 = min(num, n0 + _CHUNK)
        for n in range(n0, n1):
            image = (n * channels + c) * height * width
            dst[image:image + height * width] = 0
        for ki in range(kernel_h):
            y_offset = ki * dilation_h - pad_h
            y_lo, y_hi = _valid_range(y_offset, height, stride_h, out_h)
            for kj in range(kernel_w):
                row = (c * kernel_h + ki) * kernel_w + kj
                x_offset = kj * dilation_w - pad_w
                x_lo, x_hi = _valid_range(x_offset, width, stride_w, out_w)
                for n in range(n0, n1):
                    image = (n * channels + c) * height * width
                    for oy in range(y_lo, y_hi):
                        start = image + (oy * stride_h + y_offset) * width + x_offset
                        out = row * num * plane + n * plane + oy * out_w
                        if stride_w == 1:
                            dst[start + x_lo:start + x_hi] += src[out + x_lo:out + x_hi]
                        else:
                            for ox in range(x_lo, x_hi):
                                dst[start + ox * stride_w] += src[out + ox]


@serial_when_small(lambda *args: args[-1].size)   # the column matrix
@njit(cache=True, parallel=True)
def im2row(images, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
           dilation_h, dilation_w, rows):
    """Fill `rows` (N*out_h*out_w, kh*kw*C) from channels-last `images` (N, H, W, C).

    The transpose of im2col with the channel innermost: every copy is a run of C
    contiguous values, far faster than im2col's runs of out_w when the image is small.
    """
    num, height, width, channels = images.shape
    out_h = out_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = out_size(width, kernel_w, stride_w, pad_w, dilation_w)
    src = images.reshape(-1)
    dst = rows.reshape(-1)
    for task in prange(num * out_h):
        n = task // out_h
        oy = task % out_h
        out = task * out_w * rows.shape[1]
        for ox in range(out_w):
            x0 = ox * stride_w - pad_w
            for ki in range(kernel_h):
                y = oy * stride_h - pad_h + ki * dilation_h
                start = ((n * height + y) * width + x0) * channels
                if dilation_w == 1 and 0 <= y < height and 0 <= x0 and x0 + kernel_w <= width:
                    run = kernel_w * channels  # the whole kernel row lies inside: one copy
                    dst[out:out + run] = src[start:start + run]
                    out += run
                    continue
                for kj in range(kernel_w):
                    x = x0 + kj * dilation_w
                    if 0 <= y < height and 0 <= x < width:
                        start = ((n * height + y) * width + x) * channels
                        dst[out:out + channels] = src[start:start + channels]
                    else:
                        dst[out:out + channels] = 0
                    out += channels


@serial_when_small(lambda *args: args[-1].size)   # the images
@njit(cache=True, parallel=True)
def row2im(rows, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
           dilation_h, dilation_w, images):
    """Overwrite channels-last `images` (N, H, W, C) with the sum of the `rows` entries im2row read."""
    num, height, width, channels = images.shape
    out_h = out_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = out_size(width, kernel_w, stride_w, pad_w, dilation_w)
    src = rows.reshape(-1)
    dst = images.reshape(-1)
    for n in prange(num):  # one image per task: no write races
        dst[n * height * width * channels:(n + 1) * height * width * channels] = 0
        out = n * out_h * out_w * rows.shape[1]
        for oy in range(out_h):
            for ox in range(out_w):
                x0 = ox * stride_w - pad_w
                for ki in range(kernel_h):
                    y = oy * stride_h - pad_h + ki * dilation_h
                    start = ((n * height + y) * width + x0) * channels
                    if dilation_w == 1 and 0 <= y < height and 0 <= x0 and x0 + kernel_w <= width:
                        run = kernel_w * channels
                        dst[start:start + run] += src[out:out + run]
                        out += run
                        continue
                    for kj in range(kernel_w):
                        x = x0 + kj * dilation_w
                        if 0 <= y < height and 0 <= x < width:
                            start = ((n * height + y) * width + x) * channels
                            dst[start:start + channels] += src[out:out + channels]
                        out += channels


@njit(cache=True)
def _nd_sources(row, shape, kernel, stride, pad, dilation, out):
    """For one column row (kernel offset), the flat input index each output position reads
    (-1 where it reads padding). Axes are row-major, the last spatial axis innermost."""
    dims = shape.size
    offset = np.empty(dims, np.int64)
    rest = row
    for d in range(dims - 1, -1, -1):
        offset[d] = rest % kernel[d] * dilation[d] - pad[d]
        rest //= kernel[d]
    plane = 1
    for d in range(dims):
        plane *= out[d]
    sources = np.empty(plane, np.int64)
    for p in range(plane):
        rest = p
        index = 0
        scale = 1
        for d in range(dims - 1, -1, -1):
            x = rest % out[d] * stride[d] + offset[d]
            rest //= out[d]
            if x < 0 or x >= shape[d]:
                index = -1
                break
            index += x * scale
            scale *= shape[d]
        sources[p] = index
    return sources


@njit(cache=True)
def out_shape_nd(shape, kernel, stride, pad, dilation):
    """Caffe's convolution output size along every spatial axis."""
    out = np.empty(shape.size, np.int64)
    for d in range(shape.size):
        out[d] = out_size(shape[d], kernel[d], stride[d], pad[d], dilation[d])
    return out


@njit(cache=True, parallel=True)
def im2col_nd(images, shape, kernel, stride, pad, dilation, col):
    """Fill `col` (C*prod(kernel), N*prod(out)) from `images` (N, C, prod(shape)), any number
    of spatial axes (`shape`, `kernel`, ... are int64 arrays, one entry per axis); padding
    reads as 0. Rows in Caffe's order: channel, then kernel offsets row-major."""
    num, channels, _ = images.shape
    out = out_shape_nd(shape, kernel, stride, pad, dilation)
    rows_per_channel = col.shape[0] // channels
    plane = col.shape[1] // num
    for row in prange(col.shape[0]):
        c = row // rows_per_channel
        sources = _nd_sources(row % rows_per_channel, shape, kernel, stride, pad, dilation, out)
        for n in range(num):
            for p in range(plane):
                source = sources[p]
                col[row, n * plane + p] = images[n, c, source] if source >= 0 else 0


@njit(cache=True, parallel=True)
def col2im_nd(col, shape, kernel, stride, pad, dilation, images):
    """Overwrite `images` (N, C, prod(shape)) with the sum of the `col` entries that im2col_nd
    read from each pixel."""
    num, channels, _ = images.shape
    out = out_shape_nd(shape, kernel, stride, pad, dilation)
    rows_per_channel = col.shape[0] // channels
    plane = col.shape[1] // num
    for c in prange(channels):  # one channel per task: no write races
        images[:, c, :] = 0
        for k in range(rows_per_channel):
            sources = _nd_sources(k, shape, kernel, stride, pad, dilation, out)
            row = c * rows_per_channel + k
            for n in range(num):
                for p in range(plane):
                    source = sources[p]
                    if source >= 0:
                        images[n, c, source] += col[row, n * plane + p]
