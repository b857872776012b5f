"""Winograd kernels (kernels/winograd.py) against plain numpy references (compiled and .py_func).

The tile kernels are linear maps; the backward kernels are checked against the forward
ones as their adjoints (<f(x), y> == <x, f*(y)>), which is what the gradient needs.
"""
import numpy as np
import pytest

from layerforge.kernels.winograd import (hwnc_to_nchw, input_grad_tiles, input_tiles, nchw_to_hwnc,
                                         output_grad_tiles, output_tiles, transform_matrices)

JIT = pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
# m, r, tiles_h, tiles_w, length: lengths below, at and above the 64-value task chunk
GEOMETRIES = [(4, 5, 2, 2, 150), (4, 3, 3, 1, 5), (2, 3, 1, 2, 64), (4, 4, 2, 3, 70)]


def kernel(function, jit):
    return function if jit else function.py_func


@pytest.mark.parametrize("m, r", [(2, 3), (4, 3), (4, 4), (4, 5), (6, 3), (3, 2)])
def test_transform_matrices_give_the_correlation(m, r):
    at, g, bt = transform_matrices(m, r)
    n = m + r - 1
    assert at.shape == (m, n) and g.shape == (n, r) and bt.shape == (n, n)
    rng = np.random.default_rng(0)
    for _ in range(5):
        w, d = rng.standard_normal(r), rng.standard_normal(n)
        expected = [w @ d[i:i + r] for i in range(m)]
        np.testing.assert_allclose(at @ ((g @ w) * (bt @ d)), expected, rtol=1e-12, atol=1e-12)


def test_transform_matrices_refuse_too_many_points():
    with pytest.raises(ValueError, match="interpolation points"):
        transform_matrices(6, 5)


def reference_input_tiles(images, bt, m, tiles_h, tiles_w):
    n = bt.shape[0]
    out = np.empty((n * n, tiles_h * tiles_w, images.shape[2]))
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            patch = images[ty * m:ty * m + n, tx * m:tx * m + n]
            out[:, ty * tiles_w + tx] = np.einsum("iy,jx,yxl->ijl", bt, bt, patch).reshape(n * n, -1)
    return out


def reference_output_tiles(products, at, tiles_h, tiles_w):
    m, n = at.shape
    top = np.empty((tiles_h * m, tiles_w * m, products.shape[2]))
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            tile = products[:, ty * tiles_w + tx].reshape(n, n, -1)
            top[ty * m:(ty + 1) * m, tx * m:(tx + 1) * m] = np.einsum("ia,jb,abl->ijl", at, at, tile)
    return top


@JIT
@pytest.mark.parametrize("m, r, tiles_h, tiles_w, length", GEOMETRIES)
def test_input_tiles_and_their_adjoint(m, r, tiles_h, tiles_w, length, jit):
    at, _, bt = transform_matrices(m, r)
    n = m + r - 1
    rng = np.random.default_rng(1)
    images = rng.standard_normal((tiles_h * m + r - 1, tiles_w * m + r - 1, length))
    tiles = np.full((n * n, tiles_h * tiles_w, length), np.nan)
    kernel(input_tiles, jit)(images, bt, m, tiles)
    np.testing.assert_allclose(tiles, reference_input_tiles(images, bt, m, tiles_h, tiles_w), rtol=1e-12, atol=1e-12)

    tiles_diff = rng.standard_normal(tiles.shape)
    images_diff = np.full(images.shape, np.nan)
    kernel(input_grad_tiles, jit)(tiles_diff, bt, m, images_diff)
    np.testing.assert_allclose(np.sum(tiles * tiles_diff), np.sum(images * images_diff), rtol=1e-12)


@JIT
@pytest.mark.parametrize("m, r, tiles_h, tiles_w, length", GEOMETRIES)
def test_output_tiles_and_their_adjoint(m, r, tiles_h, tiles_w, length, jit):
    at, _, _ = transform_matrices(m, r)
    n = m + r - 1
    rng = np.random.default_rng(2)
    products = rng.standard_normal((n * n, tiles_h * tiles_w, length))
    top = np.full((tiles_h * m, tiles_w * m, length), np.nan)
    kernel(output_tiles, jit)(products, at, tiles_w, top)
    np.testing.assert_allclose(top, reference_output_tiles(products, at, tiles_h, tiles_w), rtol=1e-12, atol=1e-12)

    top_diff = rng.standard_normal(top.shape)
    products_diff = np.full(products.shape, np.nan)
    kernel(output_grad_tiles, jit)(top_diff, at, m, products_diff)
    np.testing.assert_allclose(np.sum(top * top_diff), np.sum(products * products_diff), rtol=1e-12)


def test_float32_tiles_stay_close_to_float64():
    """The transforms lose about a decimal digit in float32 (coefficients up to 21/4 and 1/180)."""
    at, _, bt = transform_matrices(4, 5)
    images = np.random.default_rng(3).standard_normal((12, 12, 100))
    exact = reference_input_tiles(images, bt, 4, 2, 2)
    tiles = np.empty(exact.shape, np.float32)
    input_tiles(images.astype(np.float32), bt.astype(np.float32), 4, tiles)
    assert np.abs(tiles - exact).max() < 1e-5 * np.abs(exact).max()


@JIT
@pytest.mark.parametrize("y0, x0, padded_shape", [(0, 0, (5, 6)), (2, 1, (9, 8)), (0, 0, (3, 4))])
def test_layout_kernels_match_numpy(y0, x0, padded_shape, jit):
    rng = np.random.default_rng(4)
    images = rng.standard_normal((3, 2, 3, 4))
    padded = np.full(padded_shape + (3, 2), np.nan)
    kernel(nchw_to_hwnc, jit)(images, y0, x0, padded)
    expected = np.zeros(padded.shape)
    expected[y0:y0 + 3, x0:x0 + 4] = images.transpose(2, 3, 0, 1)
    np.testing.assert_array_equal(padded, expected)

    bias = rng.standard_normal(2)
    back = np.full(images.shape, np.nan)
    kernel(hwnc_to_nchw, jit)(padded, y0, x0, bias, back)
    np.testing.assert_allclose(back, images + bias[:, None, None], rtol=1e-15)
