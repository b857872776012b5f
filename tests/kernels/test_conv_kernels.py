"""im2col/col2im (2-D and N-D) and the GEMM layout kernels against plain numpy references (compiled and .py_func)."""
import itertools

import numpy as np
import pytest

from layerforge.kernels.conv import add_bias_grad, batch_to_rows, rows_to_batch
from layerforge.kernels.im2col import col2im, col2im_nd, im2col, im2col_nd, im2row, out_size, row2im

# N, C, H, W, kh, kw, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w
GEOMETRIES = [
    (2, 3, 7, 6, 3, 3, 1, 1, 0, 0, 1, 1),
    (1, 1, 5, 5, 5, 5, 1, 1, 2, 2, 1, 1),
    (3, 2, 9, 8, 3, 2, 2, 1, 1, 2, 1, 2),
    (17, 2, 6, 7, 2, 3, 1, 3, 1, 0, 2, 1),  # more images than one parallel chunk
    (2, 1, 4, 4, 1, 1, 3, 3, 3, 3, 1, 1),   # padding wider than the kernel
]


def reference_im2col(images, kh, kw, sh, sw, ph, pw, dh, dw):
    num, channels, height, width = images.shape
    oh, ow = out_size(height, kh, sh, ph, dh), out_size(width, kw, sw, pw, dw)
    padded = np.pad(images, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    rows = []
    for c in range(channels):
        for ki in range(kh):
            for kj in range(kw):
                patch = padded[:, c, ki * dh:ki * dh + sh * (oh - 1) + 1:sh,
                               kj * dw:kj * dw + sw * (ow - 1) + 1:sw]
                rows.append(patch.reshape(-1))
    return np.array(rows)


def reference_col2im(col, shape, kh, kw, sh, sw, ph, pw, dh, dw):
    """The adjoint of im2col: every column entry added back to the pixel it came from."""
    num, channels, height, width = shape
    oh, ow = out_size(height, kh, sh, ph, dh), out_size(width, kw, sw, pw, dw)
    padded = np.zeros((num, channels, height + 2 * ph, width + 2 * pw))
    row = 0
    for c in range(channels):
        for ki in range(kh):
            for kj in range(kw):
                padded[:, c, ki * dh:ki * dh + sh * (oh - 1) + 1:sh,
                       kj * dw:kj * dw + sw * (ow - 1) + 1:sw] += col[row].reshape(num, oh, ow)
                row += 1
    return padded[:, :, ph:ph + height, pw:pw + width]


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_im2col_and_col2im_match_numpy(geometry, jit):
    shape, kernel_geometry = geometry[:4], geometry[4:]
    rng = np.random.default_rng(0)
    images = rng.standard_normal(shape)
    expected = reference_im2col(images, *kernel_geometry)
    col = np.full(expected.shape, np.nan)
    (im2col if jit else im2col.py_func)(images, *kernel_geometry, col)
    np.testing.assert_array_equal(col, expected)

    col = rng.standard_normal(expected.shape)
    result = np.full(shape, np.nan)
    (col2im if jit else col2im.py_func)(col, *kernel_geometry, result)
    np.testing.assert_allclose(result, reference_col2im(col, shape, *kernel_geometry), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("geometry", GEOMETRIES + [(2, 4, 8, 8, 5, 5, 1, 1, 0, 0, 1, 1)])
def test_im2row_and_row2im_match_numpy(geometry, jit):
    """im2row is im2col transposed, on channels-last images, with rows ordered (ky, kx, c)."""
    (num, channels, height, width), kernel_geometry = geometry[:4], geometry[4:]
    kh, kw = kernel_geometry[:2]
    rng = np.random.default_rng(0)
    images = rng.standard_normal((num, channels, height, width))
    expected = reference_im2col(images, *kernel_geometry).reshape(channels, kh, kw, -1)
    expected = expected.transpose(3, 1, 2, 0).reshape(-1, kh * kw * channels)
    rows = np.full(expected.shape, np.nan)
    (im2row if jit else im2row.py_func)(np.ascontiguousarray(images.transpose(0, 2, 3, 1)), *kernel_geometry, rows)
    np.testing.assert_array_equal(rows, expected)

    rows = rng.standard_normal(expected.shape)
    col = rows.reshape(-1, kh, kw, channels).transpose(3, 1, 2, 0).reshape(channels * kh * kw, -1)
    result = np.full((num, height, width, channels), np.nan)
    (row2im if jit else row2im.py_func)(rows, *kernel_geometry, result)
    np.testing.assert_allclose(result.transpose(0, 3, 1, 2), reference_col2im(col, images.shape, *kernel_geometry),
                               rtol=1e-12, atol=1e-12)


def test_im2col_float32():
    images = np.random.default_rng(1).standard_normal((4, 3, 8, 8)).astype(np.float32)
    geometry = (3, 3, 1, 1, 1, 1, 1, 1)
    col = np.empty((27, 4 * 64), np.float32)
    im2col(images, *geometry, col)
    np.testing.assert_array_equal(col, reference_im2col(images, *geometry).astype(np.float32))


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
def test_layout_kernels_match_numpy(jit):
    rng = np.random.default_rng(2)
    num, channels, plane = 3, 4, 5
    rows = rng.standard_normal((channels, num * plane))
    bias = rng.standard_normal(channels)
    expected = rows.reshape(channels, num, plane).transpose(1, 0, 2) + bias[None, :, None]
    kernel = (lambda f: f) if jit else (lambda f: f.py_func)

    batch = np.empty((num, channels, plane))
    kernel(rows_to_batch)(rows, bias, batch)
    np.testing.assert_allclose(batch, expected, rtol=1e-15)

    back = np.empty_like(rows)
    kernel(batch_to_rows)(batch, back)
    np.testing.assert_allclose(back, rows + bias[:, None], rtol=1e-15)

    bias_diff = np.ones(channels)
    kernel(add_bias_grad)(batch, bias_diff)
    np.testing.assert_allclose(bias_diff, 1 + batch.sum(axis=(0, 2)), rtol=1e-12)


def reference_im2col_nd(images, kernel, stride, pad, dilation):
    """Rows (channel, kernel offsets row-major), columns (image, output position row-major)."""
    num, channels = images.shape[:2]
    spatial = images.shape[2:]
    out = [out_size(*g) for g in zip(spatial, kernel, stride, pad, dilation)]
    padded = np.pad(images, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    rows = []
    for c in range(channels):
        for offsets in itertools.product(*[range(k) for k in kernel]):
            window = tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                           for o, d, s, n in zip(offsets, dilation, stride, out))
            rows.append(padded[(slice(None), c) + window].reshape(-1))
    return np.array(rows)


# N, C, spatial shape, kernel, stride, pad, dilation
ND_GEOMETRIES = [
    (2, 3, (9,), (3,), (2,), (1,), (1,)),
    (3, 2, (7,), (2,), (1,), (3,), (2,)),
    (2, 2, (5, 4, 6), (3, 2, 3), (1, 2, 1), (1, 0, 2), (1, 1, 2)),
    (1, 3, (4, 5, 4), (2, 2, 2), (2, 1, 1), (0, 1, 1), (1, 2, 1)),
    (2, 2, (6, 5), (3, 2), (2, 1), (1, 1), (1, 2)),                 # 2-D through the N-D kernels
    (1, 1, (3, 3, 2, 3), (2, 1, 2, 2), (1, 1, 1, 2), (1, 0, 1, 0), (1, 1, 1, 1)),
]


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("num, channels, spatial, kernel, stride, pad, dilation", ND_GEOMETRIES)
def test_im2col_nd_and_col2im_nd_match_numpy(num, channels, spatial, kernel, stride, pad, dilation, jit):
    rng = np.random.default_rng(1)
    images = rng.standard_normal((num, channels) + spatial)
    geometry = [np.array(v, np.int64) for v in (spatial, kernel, stride, pad, dilation)]
    expected = reference_im2col_nd(images, kernel, stride, pad, dilation)
    col = np.full(expected.shape, np.nan)
    (im2col_nd if jit else im2col_nd.py_func)(images.reshape(num, channels, -1), *geometry, col)
    np.testing.assert_array_equal(col, expected)

    # col2im_nd is the adjoint of im2col_nd: <im2col(x), c> == <x, col2im(c)>
    col = rng.standard_normal(expected.shape)
    result = np.full((num, channels, images[0, 0].size), np.nan)
    (col2im_nd if jit else col2im_nd.py_func)(col, *geometry, result)
    np.testing.assert_allclose(np.sum(result * images.reshape(num, channels, -1)), np.sum(col * expected),
                               rtol=1e-12)
    probe = np.zeros_like(images)
    for index in rng.choice(images.size, 5, replace=False):   # column by column: the exact adjoint
        probe.reshape(-1)[:] = 0
        probe.reshape(-1)[index] = 1
        np.testing.assert_allclose(result.reshape(-1)[index],
                                   np.sum(col * reference_im2col_nd(probe, kernel, stride, pad, dilation)),
                                   rtol=1e-12, atol=1e-12)
