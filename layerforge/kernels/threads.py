"""Run a parallel kernel on the calling thread alone when its work is too small for threads.

A parallel Numba kernel costs a few microseconds more than a serial loop while Numba's
workers are awake (they spin for a moment after each parallel loop), and 40-100 us when
they have gone to sleep (measured here). `call` lowers Numba's thread count for one call:
the setting belongs to the calling thread, and the compiled (cached) kernel is the same.
"""
import numba

# Elements visited. Measured ReLU forward with the workers awake, 2 threads vs 1: 64k floats
# 2.5 vs 2.1 us, 400k floats 8.8 vs 16.5 us, 1e6 floats 47 vs 90 us.
PARALLEL_MIN_WORK = 100_000


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
