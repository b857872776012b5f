"""Matrix products (kernels/blas.py) against numpy's: on Numba's threads or through numpy, split or
not, from any thread, in a forked child."""
import threading

import numpy as np
import pytest

from layerforge.kernels import blas


@pytest.mark.parametrize("m, k, n", [(3, 4, 5), (50, 500, 1024), (1024, 60, 50), (1, 300, 9000),
                                     (1, 7, 3), (3000, 700, 1), (1, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_matches_numpy(m, k, n, dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    out = np.full((m, n), np.nan, dtype)
    blas.matmul(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(blas.matmul(b.T, a.T, np.empty((n, m), dtype)), (a @ b).T,
                               rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("m, k, n", [(2, 3, 2), (20, 20000, 25), (50, 3, 40)])
def test_matmul_add_accumulates(m, k, n):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    out = rng.standard_normal((m, n))
    expected = out + a @ b
    blas.matmul_add(a, b, out)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    out_t = np.ascontiguousarray(expected.T)   # adding into a transposed view
    blas.matmul_add(a, b, out_t.T)
    np.testing.assert_allclose(out_t.T, expected + a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m, k, n", [(1, 2000, 3000), (1, 5, 4), (3000, 2000, 1)])
@pytest.mark.parametrize("transposed", [False, True], ids=["row-major", "transposed"])
def test_matrix_vector_products_add_and_take_either_layout(m, k, n, transposed):
    """One output row or column: gemv, split by rows when large, with either layout of the matrix."""
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    if transposed:
        a, b = np.ascontiguousarray(a.T).T, np.ascontiguousarray(b.T).T
    out = rng.standard_normal((m, n))
    expected = out + a @ b
    np.testing.assert_allclose(blas.matmul_add(a, b, out), expected, rtol=1e-12, atol=1e-12)
    out_t = np.full((n, m), np.nan)     # into a transposed view
    np.testing.assert_allclose(blas.matmul(a, b, out_t.T), a @ b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stack, m, k, n", [(1, 2, 3, 4), (64, 512, 20, 50), (3, 40, 7, 9)])
def test_matmul_stack_matches_numpy_with_transposed_operands(stack, m, k, n):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((stack, m, k)), rng.standard_normal((stack, k, n))
    out = np.full((stack, m, n), np.nan)
    np.testing.assert_allclose(blas.matmul_stack(a, b, out), a @ b, rtol=1e-12, atol=1e-12)
    a_t, b_t = np.ascontiguousarray(a.transpose(0, 2, 1)), np.ascontiguousarray(b.transpose(0, 2, 1))
    out = np.full((stack, m, n), np.nan)
    blas.matmul_stack(a_t.transpose(0, 2, 1), b_t.transpose(0, 2, 1), out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    out_t = np.full((stack, n, m), np.nan)      # into a transposed view
    blas.matmul_stack(a, b, out_t.transpose(0, 2, 1))
    np.testing.assert_allclose(out_t.transpose(0, 2, 1), a @ b, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="matmul_stack"):
        blas.matmul_stack(a, b, np.empty((stack, n, m)))


def test_products_from_several_threads_at_once():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((400, 300)), rng.standard_normal((300, 500))
    outs = [np.empty((400, 500)) for _ in range(4)]
    threads = [threading.Thread(target=blas.matmul, args=(a, b, out)) for out in outs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for out in outs:
        np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)


def test_bad_shapes_and_chunk_errors_reach_the_caller():
    a, b = np.ones((400, 300)), np.ones((300, 500))
    with pytest.raises(ValueError, match="do not give out"):
        blas.matmul(a, b, np.empty((400, 499)))
    with pytest.raises(ValueError, match="do not give out"):
        blas.matmul_add(a, b, np.empty((400, 499)))
    with pytest.raises(TypeError):   # numpy's (float results into int32)
        blas.matmul(a, b, np.empty((400, 500), np.int32))
    np.testing.assert_allclose(blas.matmul(a, b, np.empty((400, 500))), a @ b)   # still usable


PROBE = """
import numpy
from threadpoolctl import threadpool_info
from layerforge.kernels import threads
counts = lambda: [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
before = counts()
with threads.blas_on_one_thread():
    inside = counts()
print(inside, counts() == before)
"""


@pytest.mark.parametrize("env, expected", [({}, "[1] True"), ({"OPENBLAS_NUM_THREADS": "2"}, "[2] True")])
def test_one_blas_thread_inside_the_scope_unless_the_user_chose(env, expected):
    """One BLAS thread while the Net runs (unless OPENBLAS_NUM_THREADS is set), the
    process's own count again afterwards."""
    import os
    import subprocess
    import sys
    if not blas.numba_blas():
        pytest.skip("numpy's BLAS is not a 64-bit-integer OpenBLAS: products stay on numpy and its threads")
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == expected


@pytest.mark.parametrize("numba_blas", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_paths_and_awkward_operands(numba_blas, dtype, monkeypatch):
    """Views with no unit stride, empty operands and mixed dtypes go to numpy; the rest to Numba's BLAS."""
    if numba_blas and not blas.numba_blas():
        pytest.skip("numpy's BLAS is not a 64-bit-integer OpenBLAS")
    monkeypatch.setattr(blas, "_numba_blas", numba_blas)
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((300, 400)).astype(dtype), rng.standard_normal((200, 500)).astype(dtype)
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    strided = a[:, ::2]                                        # (300, 200), no unit stride
    np.testing.assert_allclose(blas.matmul(strided, b, np.empty((300, 500), dtype)), strided @ b, **tol)
    np.testing.assert_allclose(blas.matmul(a[:, :200], b, np.empty((300, 500), dtype)), a[:, :200] @ b, **tol)
    np.testing.assert_allclose(blas.matmul(a[:0, :200], b, np.empty((0, 500), dtype)), np.empty((0, 500)))
    np.testing.assert_array_equal(blas.matmul(a[:, :0], b[:0], np.ones((300, 500), dtype)), 0)
    mixed = b.astype(np.float64 if dtype == np.float32 else np.float32)
    np.testing.assert_allclose(blas.matmul(a[:, :200], mixed, np.empty((300, 500))), a[:, :200] @ mixed,
                               rtol=1e-4, atol=1e-3)


def test_split_products_work_in_a_forked_child():
    import multiprocessing
    a, b = np.ones((400, 300)), np.ones((300, 500))
    blas.matmul(a, b, np.empty((400, 500)))          # Numba's threads ran in the parent
    with multiprocessing.get_context("fork").Pool(1) as pool:
        total = pool.apply(_product_sum, (a, b))
    assert total == 400 * 500 * 300


def _product_sum(a, b):
    return float(blas.matmul(a, b, np.empty((a.shape[0], b.shape[1]))).sum())
