"""Winograd kernels (kernels/winograd.py) against plain numpy references (compiled and .py_func).

The tile kernels are linear maps; the backward kernels are checked against the forward
ones as their adjoints (<f(x), y> == <x, f*(y)>), which is what the gradient needs.
"""
import numpy as np
import pytest

from layerforge.kernels.winograd import (_CHUNK, input_grad_tiles, input_grad_tiles_banded, input_tiles,
                                         input_tiles_banded, output_grad_tiles, output_tiles,
                                         transform_matrices)

JIT = pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
# m, r, height, width, pad, planes: partial last tiles, padding, plane counts below, at and
# above the task chunk of _CHUNK planes
GEOMETRIES = [(4, 5, 12, 12, 0, _CHUNK + 22), (4, 3, 9, 5, 1, 5), (2, 3, 5, 6, 0, _CHUNK), (4, 4, 10, 13, 2, 70),
              (4, 3, 5, 4, 7, 3),   # padding wider than a tile: whole tiles of zeros
              (2, 7, 11, 9, 1, 40), (3, 6, 10, 12, 0, 9)]


def kernel(function, jit):
    return function if jit else function.py_func


def tiling(m, r, height, width, pad):
    """Output size and tile counts of a stride-1 convolution."""
    out_h, out_w = height + 2 * pad - r + 1, width + 2 * pad - r + 1
    return out_h, out_w, -(-out_h // m), -(-out_w // m)


@pytest.mark.parametrize("m, r", [(2, 3), (4, 3), (4, 4), (4, 5), (6, 3), (3, 2), (3, 6), (2, 7)])
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


def reference_input_tiles(planes, pad, bt, m, tiles_h, tiles_w):
    n = bt.shape[0]
    padded = np.zeros((len(planes), tiles_h * m + n, tiles_w * m + n))
    padded[:, pad:pad + planes.shape[1], pad:pad + planes.shape[2]] = planes
    out = np.empty((n * n, tiles_h * tiles_w, len(planes)))
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            patch = padded[:, ty * m:ty * m + n, tx * m:tx * m + n]
            out[:, ty * tiles_w + tx] = np.einsum("iy,jx,lyx->ijl", bt, bt, patch).reshape(n * n, -1)
    return out


def reference_output_tiles(products, at, tiles_h, tiles_w, bias, out_h, out_w):
    m, n = at.shape
    top = np.empty((products.shape[2], tiles_h * m, tiles_w * m))
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            tile = products[:, ty * tiles_w + tx].reshape(n, n, -1)
            top[:, ty * m:(ty + 1) * m, tx * m:(tx + 1) * m] = np.einsum("ia,jb,abl->lij", at, at, tile)
    return top[:, :out_h, :out_w] + np.resize(bias, len(top))[:, None, None]


@JIT
@pytest.mark.parametrize("input_tiles, input_grad_tiles", [(input_tiles, input_grad_tiles),
                                                          (input_tiles_banded, input_grad_tiles_banded)],
                         ids=["per-tile", "banded"])
@pytest.mark.parametrize("m, r, height, width, pad, length", GEOMETRIES)
def test_input_tiles_and_their_adjoint(m, r, height, width, pad, length, jit, input_tiles, input_grad_tiles):
    _, _, bt = transform_matrices(m, r)
    n = m + r - 1
    _, _, tiles_h, tiles_w = tiling(m, r, height, width, pad)
    rng = np.random.default_rng(1)
    planes = rng.standard_normal((length, height, width))
    tiles = np.full((n * n, tiles_h * tiles_w, length), np.nan)
    kernel(input_tiles, jit)(planes, pad, pad, bt, m, tiles_w, tiles)
    np.testing.assert_allclose(tiles, reference_input_tiles(planes, pad, bt, m, tiles_h, tiles_w),
                               rtol=1e-12, atol=1e-12)

    tiles_diff = rng.standard_normal(tiles.shape)
    planes_diff = np.full(planes.shape, np.nan)
    kernel(input_grad_tiles, jit)(tiles_diff, bt, pad, pad, m, tiles_w, planes_diff)
    np.testing.assert_allclose(np.sum(tiles * tiles_diff), np.sum(planes * planes_diff), rtol=1e-12)


@JIT
@pytest.mark.parametrize("m, r, height, width, pad, length", GEOMETRIES)
def test_output_tiles_and_their_adjoint(m, r, height, width, pad, length, jit):
    at, _, _ = transform_matrices(m, r)
    n = m + r - 1
    out_h, out_w, tiles_h, tiles_w = tiling(m, r, height, width, pad)
    rng = np.random.default_rng(2)
    products = rng.standard_normal((n * n, tiles_h * tiles_w, length))
    bias = rng.standard_normal(5 if length % 5 == 0 else 1)
    top = np.full((length, out_h, out_w), np.nan)
    kernel(output_tiles, jit)(products, at, tiles_w, bias, top)
    np.testing.assert_allclose(top, reference_output_tiles(products, at, tiles_h, tiles_w, bias, out_h, out_w),
                               rtol=1e-12, atol=1e-12)

    top_diff = rng.standard_normal(top.shape)
    products_diff = np.full(products.shape, np.nan)
    sums = np.full((tiles_h * tiles_w, length), np.nan)
    kernel(output_grad_tiles, jit)(top_diff, at, tiles_w, products_diff, sums)
    without_bias = top - np.resize(bias, length)[:, None, None]
    np.testing.assert_allclose(np.sum(without_bias * top_diff), np.sum(products * products_diff), rtol=1e-12)
    np.testing.assert_allclose(sums.sum(axis=0), top_diff.sum(axis=(1, 2)), rtol=1e-12)


def test_float32_tiles_stay_close_to_float64():
    """The transforms lose about a decimal digit in float32 (coefficients up to 21/4 and 1/180)."""
    _, _, bt = transform_matrices(4, 5)
    planes = np.random.default_rng(3).standard_normal((100, 12, 12))
    exact = reference_input_tiles(planes, 0, bt, 4, 2, 2)
    tiles = np.empty(exact.shape, np.float32)
    input_tiles(planes.astype(np.float32), 0, 0, bt.astype(np.float32), 4, 2, tiles)
    assert np.abs(tiles - exact).max() < 1e-5 * np.abs(exact).max()
