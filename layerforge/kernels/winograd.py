"""Winograd convolution F(m x m, r x r) for stride 1 (Lavin & Gray, 2016).

Each output tile of m x m comes from an input tile of n x n (n = m + r - 1):
    Y = AT [ sum_c (G w G^T) * (BT d B) ] A
The sum over channels is one matrix product per tile position (n * n of them), so a 5x5
convolution with m = 4 needs 64 multiply-adds per 16 outputs and channel pair instead of 400.
The backward pass is the adjoint of the same linear maps: dM = A dY AT per tile, then the
weight gradient sums V^T dM and the data gradient is B (dM U^T) BT, added back tile by tile.

Images here are "HWNC": (height, width, batch * channels), so that every loop of a
transform runs over long contiguous runs of batch * channels values, whatever the image
size. The transformed arrays are (n * n, tiles_h * tiles_w, batch * channels): one
(tiles * batch, channels) matrix per tile position, ready for the products. Images are
zero-padded to whole tiles by the caller, so the transforms never test bounds.
"""
from fractions import Fraction

import numpy as np
from numba import njit, prange, uint64

_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))  # interpolation points, best first
_CHUNK = 64  # batch * channel values per parallel task: a task's tiles stay in L1


def transform_matrices(m, r):
    """AT (m, n), G (n, r), BT (n, n) of F(m, r) in float64, from n - 1 points and infinity.

    With V_k the n x k Vandermonde matrix of the points (infinity: the row (0, ..., 0, 1)),
    the correlation y = w (*) d of a length-n input is y = V_m^T [(V_r w) * (V_n^-T d)].
    The inverse is exact (Fractions), so F(m, r) in float64 is as accurate as direct sums;
    in float32 the transforms cost about one decimal digit (see tests/kernels).
    """
    n = m + r - 1
    if not 2 <= n <= len(_POINTS) + 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} interpolation points; at most {len(_POINTS)} are defined")
    points = [Fraction(p) for p in _POINTS[:n - 1]]

    def vandermonde(k):
        return [[p ** i for i in range(k)] for p in points] + [[Fraction(0)] * (k - 1) + [Fraction(1)]]

    def as_float(rows):
        return np.array([[float(x) for x in row] for row in rows])

    return (as_float(vandermonde(m)).T.copy(), as_float(vandermonde(r)),
            as_float(_exact_inverse(vandermonde(n))).T.copy())


def _exact_inverse(matrix):
    """Gauss-Jordan inverse of a small square matrix of Fractions."""
    size = len(matrix)
    rows = [list(row) + [Fraction(int(i == j)) for j in range(size)] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = next(i for i in range(col, size) if rows[i][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [x / rows[col][col] for x in rows[col]]
        for i in range(size):
            if i != col and rows[i][col] != 0:
                rows[i] = [x - rows[i][col] * y for x, y in zip(rows[i], rows[col])]
    return [row[size:] for row in rows]


@njit(cache=True, fastmath=True)
def _transform(left, right, tile, half, out):
    """out (p, q, S) = left (p, y) @ tile (y, x, S) @ right.T (x, q), each entry a run of S
    values; `half` (p, x, S) is scratch. Local contiguous arrays and unsigned indices (no
    negative-index wraparound) let the loops vectorize: 3-4x faster than strided signed ones."""
    rows_out, ny = left.shape
    cols_out, nx = right.shape
    size = uint64(tile.shape[2])
    row = uint64(nx) * size
    src, mid, dst = tile.reshape(-1), half.reshape(-1), out.reshape(-1)
    for i in range(rows_out):
        at = uint64(i) * row
        for k in range(row):
            mid[at + k] = 0
        for y in range(ny):
            coef = left[i, y]
            if coef != 0:
                start = uint64(y) * row
                for k in range(row):
                    mid[at + k] += coef * src[start + k]
    for i in range(rows_out):
        for j in range(cols_out):
            at = (uint64(i) * uint64(cols_out) + uint64(j)) * size
            for q in range(size):
                dst[at + q] = 0
            for x in range(nx):
                coef = right[j, x]
                if coef != 0:
                    start = uint64(i) * row + uint64(x) * size
                    for q in range(size):
                        dst[at + q] += coef * mid[start + q]


@njit(cache=True)
def _gather(src, start, row, col, tile):
    """tile[y, x, :] = the run of tile.shape[2] values of flat `src` at start + y*row + x*col."""
    ny, nx, size = tile.shape
    dst = tile.reshape(-1)
    for y in range(ny):
        for x in range(nx):
            at = uint64(start + y * row + x * col)
            local = uint64((y * nx + x) * size)
            for q in range(uint64(size)):
                dst[local + q] = src[at + q]


@njit(cache=True)
def _scatter(tile, dst, start, row, col, add):
    """The runs of `tile` written (or added, with `add`) to flat `dst` as _gather reads them."""
    ny, nx, size = tile.shape
    src = tile.reshape(-1)
    for y in range(ny):
        for x in range(nx):
            at = uint64(start + y * row + x * col)
            local = uint64((y * nx + x) * size)
            if add:
                for q in range(uint64(size)):
                    dst[at + q] += src[local + q]
            else:
                for q in range(uint64(size)):
                    dst[at + q] = src[local + q]


@njit(cache=True, parallel=True)
def input_tiles(images, bt, m, tiles):
    """tiles[i*n + j, ty*tiles_w + tx, :] = (BT d B)[i, j] for the n x n tile d of the padded
    HWNC `images` (H, W, L) at (ty*m, tx*m); `tiles` is (n*n, tiles_h*tiles_w, L)."""
    n = bt.shape[0]
    width, length = images.shape[1:]
    tiles_w = (width - n) // m + 1
    spatial = tiles.shape[1]
    chunks = (length + _CHUNK - 1) // _CHUNK
    src, dst = images.reshape(-1), tiles.reshape(-1)
    for task in prange(spatial * chunks):
        tile = task // chunks
        lo = task % chunks * _CHUNK
        size = min(length, lo + _CHUNK) - lo
        patch = np.empty((n, n, size), tiles.dtype)
        half = np.empty((n, n, size), tiles.dtype)
        out = np.empty((n, n, size), tiles.dtype)
        _gather(src, (tile // tiles_w * m * width + tile % tiles_w * m) * length + lo, width * length, length, patch)
        _transform(bt, bt, patch, half, out)
        _scatter(out, dst, tile * length + lo, n * spatial * length, spatial * length, False)


@njit(cache=True, parallel=True)
def output_tiles(products, at, tiles_w, top):
    """top[ty*m + i, tx*m + j, :] = (AT M A)[i, j] for each tile's M = products[:, tile, :];
    `products` is (n*n, tiles, L), `top` HWNK (H, W, L) padded to whole tiles."""
    m, n = at.shape
    width, length = top.shape[1:]
    spatial = products.shape[1]
    chunks = (length + _CHUNK - 1) // _CHUNK
    src, dst = products.reshape(-1), top.reshape(-1)
    for task in prange(spatial * chunks):
        tile = task // chunks
        lo = task % chunks * _CHUNK
        size = min(length, lo + _CHUNK) - lo
        patch = np.empty((n, n, size), top.dtype)
        half = np.empty((m, n, size), top.dtype)
        out = np.empty((m, m, size), top.dtype)
        _gather(src, tile * length + lo, n * spatial * length, spatial * length, patch)
        _transform(at, at, patch, half, out)
        _scatter(out, dst, (tile // tiles_w * m * width + tile % tiles_w * m) * length + lo, width * length, length, False)


@njit(cache=True, parallel=True)
def output_grad_tiles(top_diff, at, m, grad):
    """grad[:, tile, :] = A dY AT for each m x m tile dY of the padded HWNK `top_diff`:
    the adjoint of output_tiles."""
    n = at.shape[1]
    width, length = top_diff.shape[1:]
    tiles_w = width // m
    spatial = grad.shape[1]
    chunks = (length + _CHUNK - 1) // _CHUNK
    a = at.T.copy()
    src, dst = top_diff.reshape(-1), grad.reshape(-1)
    for task in prange(spatial * chunks):
        tile = task // chunks
        lo = task % chunks * _CHUNK
        size = min(length, lo + _CHUNK) - lo
        patch = np.empty((m, m, size), grad.dtype)
        half = np.empty((n, m, size), grad.dtype)
        out = np.empty((n, n, size), grad.dtype)
        _gather(src, (tile // tiles_w * m * width + tile % tiles_w * m) * length + lo, width * length, length, patch)
        _transform(a, a, patch, half, out)
        _scatter(out, dst, tile * length + lo, n * spatial * length, spatial * length, False)


@njit(cache=True, parallel=True)
def input_grad_tiles(tiles, bt, m, images_diff):
    """Overwrite the padded HWNC `images_diff` with the sum over tiles of B dV BT, each added
    at its tile's position: the adjoint of input_tiles."""
    n = bt.shape[0]
    width, length = images_diff.shape[1:]
    tiles_w = (width - n) // m + 1
    spatial = tiles.shape[1]
    chunks = (length + _CHUNK - 1) // _CHUNK
    b = bt.T.copy()
    src, dst = tiles.reshape(-1), images_diff.reshape(-1)
    for task in prange(chunks):     # every tile of one run of values: overlapping tiles, no races
        lo = task * _CHUNK
        size = min(length, lo + _CHUNK) - lo
        images_diff[:, :, lo:lo + size] = 0
        patch = np.empty((n, n, size), tiles.dtype)
        half = np.empty((n, n, size), tiles.dtype)
        out = np.empty((n, n, size), tiles.dtype)
        for tile in range(spatial):
            _gather(src, tile * length + lo, n * spatial * length, spatial * length, patch)
            _transform(b, b, patch, half, out)
            _scatter(out, dst, (tile // tiles_w * m * width + tile % tiles_w * m) * length + lo,
                     width * length, length, True)


@njit(cache=True, parallel=True)
def nchw_to_hwnc(images, y0, x0, padded):
    """padded[y, x, n, c] = images[n, c, y - y0, x - x0], and 0 outside the images."""
    num, channels, height, width = images.shape
    for y in prange(padded.shape[0]):
        row = padded[y]
        if not 0 <= y - y0 < height:
            row[...] = 0
            continue
        for x in range(padded.shape[1]):
            if not 0 <= x - x0 < width:
                row[x] = 0
                continue
            for n in range(num):
                for c in range(channels):
                    row[x, n, c] = images[n, c, y - y0, x - x0]


@njit(cache=True, parallel=True)
def hwnc_to_nchw(padded, y0, x0, bias, images):
    """images[n, c, y, x] = padded[y + y0, x + x0, n, c] + bias[c]."""
    num, channels, height, width = images.shape
    for task in prange(num * channels):
        n = task // channels
        c = task % channels
        for y in range(height):
            for x in range(width):
                images[n, c, y, x] = padded[y + y0, x + x0, n, c] + bias[c]
