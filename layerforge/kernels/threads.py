"""Run a parallel kernel on the calling thread alone when its work is too small for threads.

Numba's OpenMP workers sleep between kernels (OMP_WAIT_POLICY=PASSIVE, see __init__.py),
and waking one costs 40-100 us (measured here), while a ReLU over 64 000 floats takes 5 us
on one thread. `call` lowers Numba's thread count for one call: the setting belongs to the
calling thread, and the compiled (cached) kernel is the same.
"""
import numba

# Elements visited. Measured ReLU forward, 1 thread vs 2: 1e6 floats 0.09 vs 0.13 ms,
# 6e6 floats 1.46 vs 0.60 ms.
PARALLEL_MIN_WORK = 1_000_000


def call(kernel, work, *args):
    """kernel(*args), on one thread when `work` (about the elements it touches) is small."""
    threads = numba.get_num_threads()
    if work >= PARALLEL_MIN_WORK or threads == 1:
        return kernel(*args)
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)
