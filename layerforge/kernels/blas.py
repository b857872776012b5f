"""Matrix products on Numba's threads, through the OpenBLAS that numpy already loaded.

A training step alternates Numba kernels and matrix products. Running both on one pool of
threads lets that pool stay awake between them: the products are called from Numba
`prange` loops, one BLAS call per chunk, into numpy's own OpenBLAS (which the Net sets to
one thread while it runs, see threads.blas_on_one_thread). Its `cblas_?gemm` and
`cblas_?gemv` entry points are found through threadpoolctl and registered with LLVM under
fixed names, so the compiled kernels are cached like any other. That happens on the first
product, not at import. A product with one row or one column of output (an InnerProduct on
one image) is a matrix-vector product: it goes to gemv, split by rows of the matrix, since
OpenBLAS's gemm packs the whole matrix first and runs such a product 2-3x slower.

Where that is not possible - numpy linked against another BLAS or an OpenBLAS with 32-bit
integers, NUMBA_DISABLE_JIT, or a forked child (GNU OpenMP cannot run there) - every
function here is a plain numpy call and the BLAS keeps its own threads.
"""
import ctypes
import os

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import njit, prange, types
from threadpoolctl import threadpool_info

from layerforge.kernels.threads import numba_thread_count

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_MIN_FLOPS = 4e6   # smaller products run on the calling thread alone

_int, _ptr = types.int64, types.intp    # 64-bit integer OpenBLAS (INTERFACE64); pointers as addresses
_sgemm = types.ExternalFunction("layerforge_sgemm", types.void(
    _int, _int, _int, _int, _int, _int, types.float32, _ptr, _int, _ptr, _int, types.float32, _ptr, _int))
_dgemm = types.ExternalFunction("layerforge_dgemm", types.void(
    _int, _int, _int, _int, _int, _int, types.float64, _ptr, _int, _ptr, _int, types.float64, _ptr, _int))
_sgemv = types.ExternalFunction("layerforge_sgemv", types.void(
    _int, _int, _int, _int, types.float32, _ptr, _int, _ptr, _int, types.float32, _ptr, _int))
_dgemv = types.ExternalFunction("layerforge_dgemv", types.void(
    _int, _int, _int, _int, types.float64, _ptr, _int, _ptr, _int, types.float64, _ptr, _int))
_OURS = ("layerforge_sgemm", "layerforge_dgemm", "layerforge_sgemv", "layerforge_dgemv")


def _register_numpy_openblas():
    """Register numpy's 64-bit-integer cblas_?gemm/?gemv with LLVM; False if there are none."""
    if numba.config.DISABLE_JIT:
        return False
    for info in threadpool_info():
        if info["internal_api"] != "openblas":
            continue
        library = ctypes.CDLL(info["filepath"])
        for prefix, suffix in (("scipy_", "64_"), ("", "64_")):
            names = [f"{prefix}cblas_{kind}{suffix}" for kind in ("sgemm", "dgemm", "sgemv", "dgemv")]
            if all(hasattr(library, name) for name in names):
                for ours, name in zip(_OURS, names):
                    llvm.add_symbol(ours, ctypes.cast(getattr(library, name), ctypes.c_void_p).value)
                return True
    return False


_numba_blas = None      # unknown until the first product asks


def _after_fork():
    """GNU OpenMP aborts in a forked child of a process that used it: products go to numpy."""
    global _numba_blas
    _numba_blas = False


def numba_blas():
    """Whether products run on Numba's threads; the first call registers numpy's BLAS with
    LLVM and, if that worked, a fork hook (once per process)."""
    global _numba_blas
    if _numba_blas is None:
        _numba_blas = _register_numpy_openblas()
        if _numba_blas:
            os.register_at_fork(after_in_child=_after_fork)
    return _numba_blas


@njit(cache=True)
def _operand(x):
    """CBLAS transpose flag and leading dimension of a 2-D view with one unit stride."""
    rows, cols = x.strides[0] // x.itemsize, x.strides[1] // x.itemsize
    if cols == 1:
        return _NO_TRANS, max(rows, x.shape[1], 1)
    return _TRANS, max(cols, x.shape[0], 1)


@njit(cache=True)
def _gemm(a, b, out, beta):
    """out = a @ b + beta * out by one BLAS call (2-D views, each with one unit stride)."""
    trans_a, lda = _operand(a)
    trans_b, ldb = _operand(b)
    ldc = max(out.strides[0] // out.itemsize, out.shape[1], 1)
    m, k, n = a.shape[0], a.shape[1], b.shape[1]
    if out.itemsize == 4:
        _sgemm(_ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, beta,
               out.ctypes.data, ldc)
    else:
        _dgemm(_ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, beta,
               out.ctypes.data, ldc)


@njit(cache=True, parallel=True)
def _gemm_chunks(a, b, out, beta, chunks):
    """_gemm cut into `chunks` along the longer side of `out`, one chunk per task."""
    rows, cols = out.shape
    for chunk in prange(chunks):
        if rows >= cols:
            lo, hi = rows * chunk // chunks, rows * (chunk + 1) // chunks
            _gemm(a[lo:hi], b, out[lo:hi], beta)
        else:
            lo, hi = cols * chunk // chunks, cols * (chunk + 1) // chunks
            _gemm(a, b[:, lo:hi], out[:, lo:hi], beta)


@njit(cache=True)
def _gemv(a, x, y, beta):
    """y = a @ x + beta * y by one BLAS call (a 2-D view with one unit stride, x and y 1-D)."""
    rows, cols = a.strides[0] // a.itemsize, a.strides[1] // a.itemsize
    if cols == 1:
        trans, m, n, lda = _NO_TRANS, a.shape[0], a.shape[1], max(rows, a.shape[1], 1)
    else:   # a transposed view: a row-major (n, m) matrix, transposed
        trans, m, n, lda = _TRANS, a.shape[1], a.shape[0], max(cols, a.shape[0], 1)
    incx, incy = x.strides[0] // x.itemsize, y.strides[0] // y.itemsize
    if y.itemsize == 4:
        _sgemv(_ROW_MAJOR, trans, m, n, 1.0, a.ctypes.data, lda, x.ctypes.data, incx, beta, y.ctypes.data, incy)
    else:
        _dgemv(_ROW_MAJOR, trans, m, n, 1.0, a.ctypes.data, lda, x.ctypes.data, incx, beta, y.ctypes.data, incy)


@njit(cache=True, parallel=True)
def _gemv_chunks(a, x, y, beta, chunks):
    """_gemv cut into `chunks` along the rows of `a`, one chunk per task."""
    rows = a.shape[0]
    for chunk in prange(chunks):
        lo, hi = rows * chunk // chunks, rows * (chunk + 1) // chunks
        _gemv(a[lo:hi], x, y[lo:hi], beta)


@njit(cache=True, parallel=True)
def _gemm_stack(a, b, out):
    """out[i] = a[i] @ b[i], one product per task."""
    for i in prange(out.shape[0]):
        _gemm(a[i], b[i], out[i], 0.0)


def _blas_ready(*arrays):
    """Whether these operands can go to the registered BLAS: float32 or float64 alike, not
    empty, each matrix with one unit stride (a transpose is fine) and an aligned start."""
    dtype = arrays[0].dtype
    ready = _numba_blas if _numba_blas is not None else numba_blas()
    return ready and dtype in (np.float32, np.float64) and all(x.size for x in arrays) and all(
        x.dtype == dtype and x.ndim >= 2 and (x.strides[-1] == x.itemsize or x.strides[-2] == x.itemsize)
        and x.flags.aligned for x in arrays)


def _row_major(a, b, out):
    """The same product with `out` row-major: out^T = b^T a^T when `out` is a transposed view."""
    if out.strides[-1] != out.itemsize and out.strides[-2] == out.itemsize:
        return b.swapaxes(-1, -2), a.swapaxes(-1, -2), out.swapaxes(-1, -2)
    return a, b, out


def _check(name, a, b, out):
    if a.shape[-1] != b.shape[-2] or out.shape != a.shape[:-1] + b.shape[-1:] or a.shape[:-2] != b.shape[:-2]:
        raise ValueError(f"{name}: shapes {a.shape} @ {b.shape} do not give out {out.shape}")


def _product(a, b, out, beta):
    flops = 2.0 * out.size * a.shape[1]
    chunks = min(numba_thread_count(), max(out.shape))
    if min(out.shape) == 1:   # a matrix-vector product: out row = b^T a row, or out column = a b column
        matrix, vector, result = (b.T, a[0], out[0]) if out.shape[0] == 1 else (a, b[:, 0], out[:, 0])
        if flops < _MIN_FLOPS or chunks < 2:
            _gemv(matrix, vector, result, beta)
        else:
            _gemv_chunks(matrix, vector, result, beta, chunks)
    elif flops < _MIN_FLOPS or chunks < 2:
        _gemm(a, b, out, beta)
    else:
        _gemm_chunks(a, b, out, beta, chunks)


def matmul(a, b, out):
    """out = a @ b for 2-D arrays (views such as transposes are fine)."""
    _check("matmul", a, b, out)
    if _blas_ready(a, b, out):
        _product(*_row_major(a, b, out), 0.0)
    else:
        np.matmul(a, b, out=out)
    return out


def matmul_add(a, b, out):
    """out += a @ b for 2-D arrays: BLAS adds into `out`, no temporary."""
    _check("matmul_add", a, b, out)
    if _blas_ready(a, b, out):
        _product(*_row_major(a, b, out), 1.0)
    else:
        out += a @ b
    return out


def matmul_stack(a, b, out):
    """out[i] = a[i] @ b[i] for stacks of matrices (views such as transposes are fine)."""
    _check("matmul_stack", a, b, out)
    if a.ndim != 3 or not _blas_ready(a, b, out) or out.shape[0] < 2:
        np.matmul(a, b, out=out)
    else:
        _gemm_stack(*_row_major(a, b, out))
    return out
