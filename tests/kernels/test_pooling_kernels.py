"""Pooling kernels against a plain numpy transcription of Caffe's window rules (compiled and .py_func)."""
import numpy as np
import pytest

from layerforge.kernels.pooling import (ave_pool_backward, ave_pool_forward, max_pool_2x2_forward,
                                        max_pool_backward, max_pool_forward)


def windows(pooled, kernel, stride, pad, size):
    """Caffe's (start, end, divisor) per pooled position along one axis."""
    for p in range(pooled):
        start = p * stride - pad
        end = min(start + kernel, size + pad)
        yield p, max(start, 0), min(end, size), end - start


def reference_pool(bottom, pooled, kernel, stride, pad):
    """MAX top, argmax and AVE top of planes (P, H, W)."""
    planes, height, width = bottom.shape
    top_max = np.empty((planes,) + pooled)
    argmax = np.empty((planes,) + pooled, np.int64)
    top_ave = np.empty((planes,) + pooled)
    for py, y0, y1, size_y in windows(pooled[0], kernel[0], stride[0], pad[0], height):
        for px, x0, x1, size_x in windows(pooled[1], kernel[1], stride[1], pad[1], width):
            window = bottom[:, y0:y1, x0:x1].reshape(planes, -1)
            top_max[:, py, px] = window.max(axis=1)
            flat = window.argmax(axis=1)
            argmax[:, py, px] = (y0 + flat // (x1 - x0)) * width + x0 + flat % (x1 - x0)
            top_ave[:, py, px] = window.sum(axis=1) / (size_y * size_x)
    return top_max, argmax, top_ave


# planes, H, W, pooled, kernel, stride, pad
CASES = [
    (3, 6, 6, (3, 3), (2, 2), (2, 2), (0, 0)),
    (2, 7, 5, (4, 3), (3, 3), (2, 2), (1, 1)),
    (4, 5, 7, (3, 6), (3, 2), (2, 1), (1, 0)),
    (1, 4, 4, (1, 1), (4, 4), (1, 1), (0, 0)),
    (2, 13, 13, (6, 6), (3, 3), (2, 2), (0, 0)),     # CaffeNet's pool5: every window inside
    (2, 9, 12, (5, 6), (3, 3), (2, 2), (1, 1)),      # cut on the left and (ceil) on the right
]


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
def test_max_pool_ties_go_to_the_first_pixel_in_row_major_order(jit):
    """Caffe's rule, in the windows run together and in those cut by the borders alike."""
    kernel_fn = (lambda f: f) if jit else (lambda f: f.py_func)
    bottom = np.random.default_rng(1).integers(0, 3, (3, 11, 12)).astype(np.float64)
    pooled, geometry = (6, 6), (3, 3, 2, 2, 1, 1)
    expected_max, expected_argmax, _ = reference_pool(bottom, pooled, (3, 3), (2, 2), (1, 1))
    top, argmax = np.empty((3,) + pooled), np.empty((3,) + pooled, np.int32)
    kernel_fn(max_pool_forward)(bottom, *geometry, top, argmax)
    np.testing.assert_array_equal(top, expected_max)
    np.testing.assert_array_equal(argmax, expected_argmax)


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("planes, height, width, pooled, kernel, stride, pad", CASES)
def test_pooling_kernels_match_numpy(planes, height, width, pooled, kernel, stride, pad, jit):
    kernel_fn = (lambda f: f) if jit else (lambda f: f.py_func)
    rng = np.random.default_rng(0)
    bottom = rng.permutation(planes * height * width).reshape(planes, height, width) * 0.5
    top_diff = rng.standard_normal((planes,) + pooled)
    expected_max, expected_argmax, expected_ave = reference_pool(bottom, pooled, kernel, stride, pad)
    geometry = kernel + stride + pad

    top = np.empty((planes,) + pooled)
    argmax = np.empty((planes,) + pooled, np.int32)
    kernel_fn(max_pool_forward)(bottom, *geometry, top, argmax)
    np.testing.assert_array_equal(top, expected_max)
    np.testing.assert_array_equal(argmax, expected_argmax)

    bottom_diff = np.full(bottom.shape, np.nan)
    kernel_fn(max_pool_backward)(top_diff, argmax, bottom_diff)
    expected_diff = np.zeros(bottom.shape)
    for i in range(planes):
        np.add.at(expected_diff[i].reshape(-1), expected_argmax[i].reshape(-1), top_diff[i].reshape(-1))
    np.testing.assert_allclose(bottom_diff, expected_diff, rtol=1e-14)

    kernel_fn(ave_pool_forward)(bottom, *geometry, top)
    np.testing.assert_allclose(top, expected_ave, rtol=1e-14)

    bottom_diff[...] = np.nan
    kernel_fn(ave_pool_backward)(top_diff, *geometry, bottom_diff)
    expected_diff[...] = 0
    for py, y0, y1, size_y in windows(pooled[0], kernel[0], stride[0], pad[0], height):
        for px, x0, x1, size_x in windows(pooled[1], kernel[1], stride[1], pad[1], width):
            expected_diff[:, y0:y1, x0:x1] += (top_diff[:, py, px] / (size_y * size_x))[:, None, None]
    np.testing.assert_allclose(bottom_diff, expected_diff, rtol=1e-12)


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("planes, height, width", [(3, 6, 8), (1, 2, 2), (5, 24, 24)])
def test_max_pool_2x2_forward_matches_numpy(planes, height, width, jit):
    kernel_fn = (lambda f: f) if jit else (lambda f: f.py_func)
    rng = np.random.default_rng(1)
    bottom = rng.permutation(planes * height * width).reshape(planes, height, width) * 0.5
    bottom[:, 0, :2] = bottom[:, 1, 0:1]   # a tie: the first pixel in window order wins
    pooled = (height // 2, width // 2)
    expected_max, expected_argmax, _ = reference_pool(bottom, pooled, (2, 2), (2, 2), (0, 0))
    top = np.empty((planes,) + pooled)
    argmax = np.empty((planes,) + pooled, np.int32)
    kernel_fn(max_pool_2x2_forward)(bottom, top, argmax)
    np.testing.assert_array_equal(top, expected_max)
    np.testing.assert_array_equal(argmax, expected_argmax)
