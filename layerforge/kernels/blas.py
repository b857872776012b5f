"""Matrix products split across layerforge's own threads over a single-threaded BLAS.

OpenBLAS's threads wait for each other at the end of every product. On a 2-core machine
that is also running something else, one of them is often descheduled for a whole time
slice, and a 3 ms product took 20 ms to 2 s (measured). Here OpenBLAS runs one thread
(set_blas_threads(1) at import) and a product is cut into a few chunks that the calling
thread and one helper thread take from a shared counter: whoever is running takes the
next chunk, so a late helper just does less. numpy releases the GIL inside the product.
"""
import os
import threading

import numpy as np
from threadpoolctl import threadpool_limits

_CHUNKS = 4          # chunks per product: 2 per thread, small enough to rebalance
_MIN_FLOPS = 4e6     # smaller products run in the caller at once


def set_blas_threads(count):
    """Set the thread count of the BLAS libraries loaded in this process.

    numpy's own OpenBLAS reads OPENBLAS_NUM_THREADS only when it is loaded, which may be
    before layerforge is imported, so threadpoolctl sets the count through the library.
    """
    threadpool_limits(limits=count, user_api="blas")


class _Helper:
    """One daemon thread that joins the caller in taking chunks of the current job."""

    def __init__(self):
        self.ready = threading.Condition()
        self.job = None
        self.thread = None

    def run(self, chunk, count):
        """Call chunk(i) for i in range(count), in this thread and the helper thread."""
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._loop, name="layerforge-blas", daemon=True)
            self.thread.start()
        job = {"chunk": chunk, "count": count, "next": 0, "done": 0, "error": None,
               "finished": threading.Event(), "lock": threading.Lock()}
        with self.ready:
            self.job = job
            self.ready.notify()
        self._work(job)
        job["finished"].wait()
        if job["error"] is not None:
            raise job["error"]

    @staticmethod
    def _work(job):
        while True:
            with job["lock"]:
                i = job["next"]
                if i >= job["count"]:
                    return
                job["next"] = i + 1
            try:
                job["chunk"](i)
            except BaseException as err:   # re-raised by the caller
                job["error"] = err
            with job["lock"]:
                job["done"] += 1
                if job["done"] == job["count"]:
                    job["finished"].set()

    def _loop(self):
        while True:
            with self.ready:
                while self.job is None:
                    self.ready.wait()
                job, self.job = self.job, None
            self._work(job)


_helper = _Helper()
_lock = threading.Lock()   # one split product at a time (the helper serves one job)


def _after_fork():
    """A forked child has no helper thread and may have inherited a held lock: start afresh."""
    global _helper, _lock
    _helper, _lock = _Helper(), threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def _bounds(size, count):
    return [(size * i // count, size * (i + 1) // count) for i in range(count)]


def _split(chunk, count, flops):
    if flops < _MIN_FLOPS or threading.current_thread() is _helper.thread or not _lock.acquire(False):
        for i in range(count):
            chunk(i)
        return
    try:
        _helper.run(chunk, count)
    finally:
        _lock.release()


def matmul(a, b, out):
    """out = a @ b for 2-D arrays, cut along the longer side of `out`."""
    rows, cols = out.shape
    if a.shape[1] != b.shape[0] or (rows, cols) != (a.shape[0], b.shape[1]):
        raise ValueError(f"matmul: shapes {a.shape} @ {b.shape} do not give out {out.shape}")
    if rows >= cols:
        bounds = _bounds(rows, min(_CHUNKS, rows))

        def chunk(i):
            lo, hi = bounds[i]
            np.matmul(a[lo:hi], b, out=out[lo:hi])
    else:
        bounds = _bounds(cols, min(_CHUNKS, cols))

        def chunk(i):
            lo, hi = bounds[i]
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])
    _split(chunk, len(bounds), 2.0 * rows * cols * a.shape[1])
    return out


def matmul_stack(a, b, out):
    """out[i] = a[i] @ b[i] for stacks of matrices (views such as transposes are fine),
    cut along the stack."""
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1] or out.shape != a.shape[:2] + b.shape[2:]:
        raise ValueError(f"matmul_stack: shapes {a.shape} @ {b.shape} do not give out {out.shape}")
    bounds = _bounds(len(out), min(_CHUNKS, len(out)))

    def chunk(i):
        lo, hi = bounds[i]
        np.matmul(a[lo:hi], b[lo:hi], out=out[lo:hi])
    _split(chunk, len(bounds), 2.0 * out.size * a.shape[2])
    return out


def matmul_add(a, b, out, partial):
    """out += a @ b, cut along the inner dimension; `partial` is a (chunks, *out.shape) buffer
    (see partial_shape) so the chunks never add into one array at the same time."""
    inner = a.shape[1]
    if inner != b.shape[0] or out.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"matmul_add: shapes {a.shape} @ {b.shape} do not give out {out.shape}")
    bounds = _bounds(inner, min(partial.shape[0], inner))

    def chunk(i):
        lo, hi = bounds[i]
        np.matmul(a[:, lo:hi], b[lo:hi], out=partial[i])
    _split(chunk, len(bounds), 2.0 * out.size * inner)
    for i in range(len(bounds)):
        out += partial[i]


def partial_shape(shape):
    """Shape of the `partial` buffer matmul_add needs for an output of `shape`."""
    return (_CHUNKS,) + tuple(shape)


if os.environ.get("OPENBLAS_NUM_THREADS") is None:
    set_blas_threads(1)
