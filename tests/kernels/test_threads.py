"""threads.serial_when_small: small work runs a prange kernel on the calling thread alone, large
work on all; the thread count is restored, also after an error."""
import numba
import numpy as np
import pytest
from numba import njit, prange

from layerforge.kernels import threads


@njit(parallel=True)
def _thread_count_kernel(work, out):
    """out[i] = the number of threads this kernel was launched with."""
    for i in prange(out.size):
        out[i] = numba.get_num_threads()


_thread_count = threads.serial_when_small(lambda work, out: work)(_thread_count_kernel)


@pytest.mark.parametrize("work, expected", [(10, 1), (threads.PARALLEL_MIN_WORK, None)])
def test_thread_count_follows_work(work, expected):
    before = numba.get_num_threads()
    out = np.zeros(4, np.int64)
    _thread_count(work, out)
    assert set(out) == {expected or before}
    assert numba.get_num_threads() == before


def test_thread_count_restored_after_an_error():
    before = numba.get_num_threads()

    def failing(work):
        assert numba.get_num_threads() == 1
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        threads.serial_when_small(lambda work: work)(failing)(1)
    assert numba.get_num_threads() == before


def test_wrapped_kernel_keeps_its_python_function():
    python = getattr(_thread_count_kernel, "py_func", _thread_count_kernel)   # plain under NUMBA_DISABLE_JIT
    assert _thread_count.py_func is python
    assert _thread_count.kernel is _thread_count_kernel and _thread_count.__name__ == "_thread_count_kernel"


def test_public_thread_count_functions_when_numba_hides_its_own(monkeypatch):
    monkeypatch.setattr(threads, "_thread_count", None)
    monkeypatch.setattr(threads, "_native_thread_count", lambda: None)
    assert threads._thread_count_functions() == (numba.get_num_threads, numba.set_num_threads)
    out = np.zeros(4, np.int64)
    _thread_count(10, out)
    assert set(out) == {1}
