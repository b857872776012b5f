"""threads.call: small work runs a prange kernel on the calling thread alone, large work on all."""
import numba
import numpy as np
import pytest
from numba import njit, prange

from layerforge.kernels import threads


@njit(parallel=True)
def _thread_count(out):
    """out[i] = the number of threads this kernel was launched with."""
    for i in prange(out.size):
        out[i] = numba.get_num_threads()


@pytest.mark.parametrize("work, expected", [(10, 1), (threads.PARALLEL_MIN_WORK, None)])
def test_thread_count_follows_work(work, expected):
    before = numba.get_num_threads()
    out = np.zeros(4, np.int64)
    threads.call(_thread_count, work, out)
    assert set(out) == {expected or before}
    assert numba.get_num_threads() == before


def test_thread_count_restored_after_an_error():
    before = numba.get_num_threads()

    def failing():
        assert numba.get_num_threads() == 1
        raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        threads.call(failing, 1)
    assert numba.get_num_threads() == before
