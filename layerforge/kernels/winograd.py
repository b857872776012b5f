"""Winograd convolution F(m x m, r x r) for stride 1 (Lavin & Gray, 2016).

Each output tile of m x m comes from an input tile of n x n (n = m + r - 1):
    Y = AT [ sum_c (G w G^T) * (BT d B) ] A
The sum over channels is one matrix product per tile position (n * n of them), so a 5x5
convolution with m = 4 needs 64 multiply-adds per 16 outputs and channel pair instead of 400.
The backward pass is the adjoint of the same linear maps: dM = A dY AT per tile, then the
weight gradient sums V^T dM and the data gradient is B (dM U^T) BT, added back tile by tile.

Images are NCHW blobs seen as planes (N*C, H, W). A parallel task takes one tile position
and a chunk of 256 planes, gathers that tile of each plane into a local (n, n, 256) array
and transforms all 256 at once, so every loop of a transform runs over 256 contiguous
values whatever the image size (2x faster than chunks of 64 on the Siamese conv2). The
transformed arrays are (n*n, tiles_h*tiles_w, N*C): one (tiles * N, C) matrix per tile
position, ready for the products. Tiles reaching beyond
the (padded) image read zeros; output tiles reaching beyond the output are cropped.
Where input tiles overlap much (n > 2m: F(3x3, 6x6), F(2x2, 7x7)), the `_banded` kernels
read and write the planes through a local channels-last band of tile rows instead, each
pixel once: at Koch's conv2 the input transform 34 -> 23 ms and its adjoint 71 -> 22 ms;
with less overlap (F(4x4, 3x3) or F(4x4, 5x5)) they were 10-25 % slower.
"""
from fractions import Fraction

import numpy as np
from numba import njit, prange, uint64

_POINTS = (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))  # interpolation points, best first
_CHUNK = 256  # planes (batch * channel values) per parallel task: long vector loops, tiles in L2
_MIN_TASKS = 8  # input_tiles_banded splits tile rows into blocks below this many chunks


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
def _copy_tile(tiles, tile, lo, patch, to_patch):
    """Copy runs lo:lo + size of tile `tile` between a transformed array (n*n, tiles, L) and a
    local patch (a, b, size) with a * b = n*n: into the patch when `to_patch`, else out of it."""
    spatial, length = tiles.shape[1:]
    size = patch.shape[2]
    flat, local = tiles.reshape(-1), patch.reshape(-1)
    for p in range(patch.shape[0] * patch.shape[1]):
        at = uint64((p * spatial + tile) * length + lo)
        start = uint64(p * size)
        if to_patch:
            for q in range(uint64(size)):
                local[start + q] = flat[at + q]
        else:
            for q in range(uint64(size)):
                flat[at + q] = local[start + q]


@njit(cache=True)
def _gather_planes(planes, lo, y0, x0, tile):
    """tile[y, x, q] = planes[lo + q, y0 + y, x0 + x], or 0 outside the planes.

    The loop over q is innermost: contiguous stores, loads one plane apart (1.6x faster
    than running along the rows of each plane)."""
    ny, nx, size = tile.shape
    height, width = planes.shape[1:]
    y_lo, y_hi = max(0, -y0), min(ny, height - y0)
    x_lo = max(0, -x0)
    x_hi = max(x_lo, min(nx, width - x0))   # a tile may lie wholly in the padding
    if y_lo > 0 or y_hi < ny or x_lo > 0 or x_hi < nx:
        tile[...] = 0
    src, dst = planes.reshape(-1), tile.reshape(-1)
    plane = uint64(height * width)
    for y in range(y_lo, y_hi):
        for x in range(x_lo, x_hi):
            at = uint64(lo) * plane + uint64((y0 + y) * width + x0 + x)   # unsigned: no wraparound checks
            local = uint64((y * nx + x) * size)
            for q in range(uint64(size)):
                dst[local + q] = src[at + q * plane]


@njit(cache=True)
def _put_planes(tile, planes, lo, y0, x0, add):
    """planes[lo + q, y0 + y, x0 + x] = (or += with `add`) tile[y, x, q], inside the planes only
    (q innermost, as in _gather_planes)."""
    ny, nx, size = tile.shape
    height, width = planes.shape[1:]
    x_lo = max(0, -x0)
    x_hi = max(x_lo, min(nx, width - x0))
    src, dst = tile.reshape(-1), planes.reshape(-1)
    plane = uint64(height * width)
    for y in range(max(0, -y0), min(ny, height - y0)):
        for x in range(x_lo, x_hi):
            at = uint64(lo) * plane + uint64((y0 + y) * width + x0 + x)
            local = uint64((y * nx + x) * size)
            if add:
                for q in range(uint64(size)):
                    dst[at + q * plane] += src[local + q]
            else:
                for q in range(uint64(size)):
                    dst[at + q * plane] = src[local + q]


@njit(cache=True)
def _get_band_row(planes, lo, row, pad_w, band, y):
    """band[y, x + pad_w, q] = planes[lo + q, row, x], the rest of band row y zero (and all
    of it when `row` lies outside the planes)."""
    height, width = planes.shape[1:]
    band[y] = 0
    if 0 <= row < height:
        for q in range(band.shape[2]):
            for x in range(width):
                band[y, x + pad_w, q] = planes[lo + q, row, x]


@njit(cache=True)
def _band_tile(band, x0, tile, to_band):
    """Between a band (n, width, size) and a tile (n, nx, size) at column x0, as runs of
    contiguous values: band[y, x0 + x, :] += tile[y, x, :] when `to_band`, else
    tile[y, x, :] = band[y, x0 + x, :]."""
    ny, nx, size = tile.shape
    wide, local = band.reshape(-1), tile.reshape(-1)
    row = uint64(band.shape[1] * size)
    for y in range(ny):
        at = uint64(y) * row + uint64(x0 * size)
        start = uint64(y * nx * size)
        if to_band:
            for k in range(uint64(nx * size)):
                wide[at + k] += local[start + k]
        else:
            for k in range(uint64(nx * size)):
                local[start + k] = wide[at + k]


@njit(cache=True)
def _put_band_row(band, y, pad_w, planes, lo, row):
    """planes[lo + q, row, x] = band[y, x + pad_w, q] for every x of the planes."""
    size = band.shape[2]
    width = planes.shape[2]
    for q in range(size):
        for x in range(width):
            planes[lo + q, row, x] = band[y, x + pad_w, q]


@njit(cache=True)
def _chunk_count(length):
    """Tasks per tile position: chunks of _CHUNK planes out of `length`."""
    return (length + _CHUNK - 1) // _CHUNK


@njit(cache=True)
def _task_span(task, chunks, length):
    """Task `task` of spatial * chunks: its tile position and its planes lo:lo + size."""
    lo = task % chunks * _CHUNK
    return task // chunks, lo, min(length, lo + _CHUNK) - lo


@njit(cache=True, parallel=True)
def input_tiles(planes, pad_h, pad_w, bt, m, tiles_w, tiles):
    """tiles[i*n + j, ty*tiles_w + tx, l] = (BT d B)[i, j] for the n x n tile d of plane l
    (N*C, H, W) at (ty*m - pad_h, tx*m - pad_w)."""
    n = bt.shape[0]
    length, spatial = planes.shape[0], tiles.shape[1]
    chunks = _chunk_count(length)
    for task in prange(spatial * chunks):
        tile, lo, size = _task_span(task, chunks, length)
        patch = np.empty((n, n, size), tiles.dtype)
        half = np.empty((n, n, size), tiles.dtype)
        out = np.empty((n, n, size), tiles.dtype)
        _gather_planes(planes, lo, tile // tiles_w * m - pad_h, tile % tiles_w * m - pad_w, patch)
        _transform(bt, bt, patch, half, out)
        _copy_tile(tiles, tile, lo, out, False)


@njit(cache=True, parallel=True)
def output_tiles(products, at, tiles_w, bias, top):
    """top[l, ty*m + i, tx*m + j] = (AT M A)[i, j] + bias[l % K] for each tile's
    M = products[:, tile, l], over planes `top` (N*K, out_h, out_w); K = len(bias)."""
    m, n = at.shape
    length, spatial = top.shape[0], products.shape[1]
    chunks = _chunk_count(length)
    for task in prange(spatial * chunks):
        tile, lo, size = _task_span(task, chunks, length)
        patch = np.empty((n, n, size), top.dtype)
        half = np.empty((m, n, size), top.dtype)
        out = np.empty((m, m, size), top.dtype)
        _copy_tile(products, tile, lo, patch, True)
        _transform(at, at, patch, half, out)
        for q in range(size):
            out[:, :, q] += bias[(lo + q) % len(bias)]
        _put_planes(out, top, lo, tile // tiles_w * m, tile % tiles_w * m, False)


@njit(cache=True, parallel=True)
def output_grad_tiles(top_diff, at, tiles_w, grad, sums):
    """grad[:, tile, l] = A dY AT for each m x m tile dY of plane l of `top_diff` (N*K, out_h,
    out_w), zero beyond the output: the adjoint of output_tiles. sums[tile, l] = the sum of
    dY, from which the caller gets the bias gradient."""
    m, n = at.shape
    length, spatial = top_diff.shape[0], grad.shape[1]
    chunks = _chunk_count(length)
    a = at.T.copy()
    for task in prange(spatial * chunks):
        tile, lo, size = _task_span(task, chunks, length)
        patch = np.empty((m, m, size), grad.dtype)
        half = np.empty((n, m, size), grad.dtype)
        out = np.empty((n, n, size), grad.dtype)
        _gather_planes(top_diff, lo, tile // tiles_w * m, tile % tiles_w * m, patch)
        tile_sums = sums[tile, lo:lo + size]
        tile_sums[:] = 0
        for i in range(m):
            for j in range(m):
                tile_sums += patch[i, j]
        _transform(a, a, patch, half, out)
        _copy_tile(grad, tile, lo, out, False)


@njit(cache=True, parallel=True)
def input_grad_tiles(tiles, bt, pad_h, pad_w, m, tiles_w, planes_diff):
    """Overwrite `planes_diff` (N*C, H, W) with the sum over tiles of B dV BT, each added at
    its tile's position (inside the planes): the adjoint of input_tiles."""
    n = bt.shape[0]
    length, spatial = planes_diff.shape[0], tiles.shape[1]
    chunks = _chunk_count(length)
    b = bt.T.copy()
    for task in prange(chunks):     # every tile of one chunk of planes: overlapping tiles, no races
        _, lo, size = _task_span(task, chunks, length)
        planes_diff[lo:lo + size] = 0
        patch = np.empty((n, n, size), tiles.dtype)
        half = np.empty((n, n, size), tiles.dtype)
        out = np.empty((n, n, size), tiles.dtype)
        for tile in range(spatial):
            _copy_tile(tiles, tile, lo, patch, True)
            _transform(b, b, patch, half, out)
            _put_planes(out, planes_diff, lo, tile // tiles_w * m - pad_h, tile % tiles_w * m - pad_w, True)


@njit(cache=True, parallel=True)
def input_tiles_banded(planes, pad_h, pad_w, bt, m, tiles_w, tiles):
    """input_tiles for tiles that overlap much (n > 2m): a task takes a chunk of planes and a
    block of tile rows, row by row, from a local band of n padded rows copied channels-last
    (each pixel read once within the block; zeros outside the planes), so a tile is n runs
    of contiguous values, where input_tiles reads every pixel (n/m)^2 times one plane apart.
    With fewer than _MIN_TASKS chunks the tile rows are split into blocks, so that small
    batches still run in parallel."""
    n = bt.shape[0]
    length, spatial = planes.shape[0], tiles.shape[1]
    tiles_h = spatial // tiles_w
    band_w = (tiles_w - 1) * m + n
    chunks = _chunk_count(length)
    blocks = min(tiles_h, -(-_MIN_TASKS // chunks))
    for task in prange(chunks * blocks):
        _, lo, size = _task_span(task // blocks, chunks, length)
        block = task % blocks
        patch = np.empty((n, n, size), tiles.dtype)
        half = np.empty((n, n, size), tiles.dtype)
        out = np.empty((n, n, size), tiles.dtype)
        band = np.zeros((n, band_w, size), tiles.dtype)
        first = tiles_h * block // blocks
        for ty in range(first, tiles_h * (block + 1) // blocks):
            if ty > first:
                band[:n - m] = band[m:].copy()
            for y in range(0 if ty == first else n - m, n):
                _get_band_row(planes, lo, ty * m + y - pad_h, pad_w, band, y)
            for tx in range(tiles_w):
                _band_tile(band, tx * m, patch, False)
                _transform(bt, bt, patch, half, out)
                _copy_tile(tiles, ty * tiles_w + tx, lo, out, False)


@njit(cache=True, parallel=True)
def input_grad_tiles_banded(tiles, bt, pad_h, pad_w, m, tiles_w, planes_diff):
    """input_grad_tiles for tiles that overlap much (n > 2m): a task takes a chunk of planes
    and its tiles row by row. Overlapping tiles add into a local band of n padded rows,
    channels-last, so the adds are runs of contiguous values; once no later tile reaches a
    row, the row goes to the planes, each pixel written once, where input_grad_tiles writes
    every pixel (n/m)^2 times one plane apart (16 times for F(2x2, 7x7))."""
    n = bt.shape[0]
    length, spatial = planes_diff.shape[0], tiles.shape[1]
    height = planes_diff.shape[1]
    tiles_h = spatial // tiles_w
    band_w = (tiles_w - 1) * m + n
    chunks = _chunk_count(length)
    b = bt.T.copy()
    for task in prange(chunks):     # every tile of one chunk of planes: overlapping tiles, no races
        _, lo, size = _task_span(task, chunks, length)
        patch = np.empty((n, n, size), tiles.dtype)
        half = np.empty((n, n, size), tiles.dtype)
        out = np.empty((n, n, size), tiles.dtype)
        band = np.zeros((n, band_w, size), tiles.dtype)
        for ty in range(tiles_h):
            for tx in range(tiles_w):
                _copy_tile(tiles, ty * tiles_w + tx, lo, patch, True)
                _transform(b, b, patch, half, out)
                _band_tile(band, tx * m, out, True)
            done = m if ty < tiles_h - 1 else n    # rows no later tile reaches
            for y in range(done):
                row = ty * m + y - pad_h
                if 0 <= row < height:
                    _put_band_row(band, y, pad_w, planes_diff, lo, row)
            band[:n - m] = band[m:].copy()
            band[n - m:] = 0
