"""Every environment setting layerforge reads, in one place.

Each is read when it is used, never at import, so a program may set it after importing
layerforge:

- LAYERFORGE_MERGE_TWINS=0 runs tied twin branches separately (default: one batch of 2N,
  see twins.py); `Net(..., merge_twins=...)` overrides it.
- LAYERFORGE_MNIST: the folder of the four MNIST IDX files (`layerforge data mnist`).
- OPENBLAS_NUM_THREADS: when set, layerforge leaves numpy's BLAS threads as they are.
- NUMBA_CACHE_DIR: where Numba caches compiled kernels. Unset, Numba uses the kernels'
  `__pycache__`, else a user-wide folder under $XDG_CACHE_HOME or ~/.cache; when neither is
  writable (a read-only install and $HOME), layerforge points Numba's own config (not the
  environment) at a private folder in the temporary directory before the first kernel is
  imported (`numba_cache_fallback`).
- OMP_WAIT_POLICY / GOMP_SPINCOUNT: when either is set, Numba's OpenMP workers keep that wait
  policy; otherwise they start with a spin of WORKER_SPIN (see kernels/threads.py).
"""
import os
import tempfile

# GNU OpenMP's spin before an idle Numba worker sleeps (GOMP_SPINCOUNT, in spin iterations;
# libgomp's own default is 300 000, milliseconds of spinning). A short spin spans the gaps
# between the kernels of a step and gives a shared core up soon: measured in
# benchmarks/shared_machine.py (benchmarks/README.md, "Shared machine").
WORKER_SPIN = 1_000


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


def _writable(folder):
    """Whether `folder` could be created or written, judged by permissions alone (nothing is
    written): its nearest existing ancestor must be a writable directory."""
    path = os.path.abspath(folder)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def numba_cache_fallback(kernels_folder):
    """`<tmp>/layerforge-numba-<uid>` (created) when NUMBA_CACHE_DIR is unset and neither of
    Numba's default cache folders is writable, so that Numba, which would refuse every cached
    kernel, caches there instead; else None. The caller sets it in Numba's own config, not in
    the environment."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    user_cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "numba")
    if _writable(os.path.join(kernels_folder, "__pycache__")) or _writable(user_cache):
        return None
    folder = os.path.join(tempfile.gettempdir(), f"layerforge-numba-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder
