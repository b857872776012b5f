"""Every environment setting layerforge reads, in one place.

Each is read when it is used, never at import, so a program may set it after importing
layerforge:

- LAYERFORGE_MERGE_TWINS=0 runs tied twin branches separately (default: one batch of 2N,
  see twins.py); `Net(..., merge_twins=...)` overrides it.
- LAYERFORGE_MNIST: the folder of the four MNIST IDX files (`layerforge data mnist`).
- OPENBLAS_NUM_THREADS: when set, layerforge leaves numpy's BLAS threads as they are.
- OMP_WAIT_POLICY / GOMP_SPINCOUNT: when either is set, Numba's OpenMP workers keep that wait
  policy; otherwise they start with a spin of WORKER_SPIN (see kernels/threads.py).
"""
import os

# GNU OpenMP's spin before an idle Numba worker sleeps (GOMP_SPINCOUNT, in spin iterations;
# libgomp's own default is 300 000). Short enough that a worker sharing its core with another
# busy process soon gives the core up, long enough to span the gap between the kernels of a step.
WORKER_SPIN = 10_000


def worker_spin():
    """The GOMP_SPINCOUNT layerforge starts Numba's workers with, or None when the user chose a
    wait policy (OMP_WAIT_POLICY or GOMP_SPINCOUNT set)."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return None
    return WORKER_SPIN


def merge_twins():
    return os.environ.get("LAYERFORGE_MERGE_TWINS", "1") != "0"


def mnist_folder():
    return os.environ.get("LAYERFORGE_MNIST") or None


def blas_threads_set_by_user():
    return os.environ.get("OPENBLAS_NUM_THREADS") is not None
