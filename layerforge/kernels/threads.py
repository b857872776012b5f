"""Thread policies next to the kernels: small work on the calling thread alone, and numpy's
OpenBLAS on one thread while layerforge's kernels drive the products.

A parallel Numba kernel costs a few microseconds more than a serial loop while Numba's
workers are awake (they spin for a moment after each parallel loop), and 40-100 us when
they have gone to sleep. `serial_when_small` wraps a parallel kernel so that a call with
little work lowers Numba's thread count for that call only: the setting belongs to the
calling thread, and the compiled (cached) kernel is the same. Kernel modules export their
parallel kernels already wrapped; layers call them like any function.

`blas_on_one_thread()` is the scope the Net runs its layers in, and the solver its training
loop (see kernels/blas.py): it sets numpy's OpenBLAS to one thread on entry and restores the
previous count on exit, so a program that imports layerforge keeps its BLAS threads
everywhere else.
"""
import ctypes
import os

import numba

from layerforge import config

PARALLEL_MIN_WORK = 100_000   # elements visited; below it a kernel runs on one thread


def _first_size(*args):
    return args[0].size


def serial_when_small(work=_first_size):
    """Decorator for a parallel kernel: run it on the calling thread alone when `work(*args)`
    (about the elements it touches; default: the first argument's size) is small. The plain
    Python function stays reachable as `.py_func`, the jitted one as `.kernel`."""

    def wrap(kernel):
        def run(*args):
            if work(*args) >= PARALLEL_MIN_WORK:
                return kernel(*args)
            get_threads, set_threads = _thread_count or _thread_count_functions()
            threads = get_threads()
            if threads == 1:
                return kernel(*args)
            set_threads(1)
            try:
                return kernel(*args)
            finally:
                set_threads(threads)

        run.kernel, run.py_func = kernel, getattr(kernel, "py_func", kernel)
        run.__name__, run.__qualname__, run.__doc__ = kernel.__name__, kernel.__qualname__, kernel.__doc__
        run.__module__ = kernel.__module__
        return run

    return wrap


_thread_count = None  # (get, set) of the calling thread's Numba thread count


def numba_thread_count():
    """numba.get_num_threads(), without its lock (see _thread_count_functions)."""
    return (_thread_count or _thread_count_functions())[0]()


def _thread_count_functions():
    """Numba's get/set of the calling thread's thread count, once its workers run
    (start_workers): the threading layer's own functions where Numba exposes them (0.3 us a
    call; numba.get_num_threads/set_num_threads first take a process-wide lock, 1.5 us),
    else the public pair."""
    global _thread_count
    start_workers()
    numba.get_num_threads()     # the threading layer is loaded from here on
    _thread_count = _native_thread_count() or (numba.get_num_threads, numba.set_num_threads)
    return _thread_count


def _native_thread_count():
    from numba.np.ufunc import parallel

    native = getattr(parallel, "_get_num_threads", None), getattr(parallel, "_set_num_threads", None)
    return native if all(map(callable, native)) else None


_openblas = None      # (get_num_threads, set_num_threads) of numpy's OpenBLAS, () to leave it


def _openblas_controls():
    """numpy's OpenBLAS thread-count functions, found once through threadpoolctl; none when
    OPENBLAS_NUM_THREADS is set (the user chose)."""
    global _openblas
    if _openblas is None:
        from threadpoolctl import threadpool_info

        _openblas = ()
        for info in threadpool_info() if not config.blas_threads_set_by_user() else ():
            if info["internal_api"] != "openblas":
                continue
            library = ctypes.CDLL(info["filepath"])
            for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
                get, put = f"{prefix}openblas_get_num_threads{suffix}", f"{prefix}openblas_set_num_threads{suffix}"
                if hasattr(library, get) and hasattr(library, put):
                    _openblas = (getattr(library, get), getattr(library, put))
                    _openblas[1].argtypes = [ctypes.c_int]
                    break
            break
    return _openblas


_workers_started = False


def start_workers():
    """Start Numba's worker threads (once) with layerforge's wait policy: GNU OpenMP reads
    GOMP_SPINCOUNT when Numba first loads it, so the variable is set for that moment only and
    the environment is restored after. Does nothing when the workers already run (another
    library started them) or when the user set a policy (config.worker_spin)."""
    global _workers_started
    if _workers_started:
        return
    _workers_started = True
    from numba.np.ufunc import parallel

    spin = config.worker_spin()
    if spin is None or parallel._is_initialized or numba.config.DISABLE_JIT:
        return
    os.environ["GOMP_SPINCOUNT"] = str(spin)
    try:
        parallel._launch_threads()
    finally:
        del os.environ["GOMP_SPINCOUNT"]


class blas_on_one_thread:
    """Context manager: numpy's OpenBLAS on one thread inside the block (unless
    OPENBLAS_NUM_THREADS is set), its previous count after. A nested block costs one call of
    the library's get_num_threads. The first block also starts Numba's workers (start_workers)."""

    __slots__ = ("before",)

    def __enter__(self):
        start_workers()
        controls = _openblas if _openblas is not None else _openblas_controls()
        self.before = controls[0]() if controls else 1
        if self.before != 1:
            controls[1](1)
        return self

    def __exit__(self, *exc):
        if self.before != 1:
            _openblas[1](self.before)
