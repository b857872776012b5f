"""Every environment setting layerforge reads, in one place.

Each is read when it is used, never at import, so a program may set it after importing
layerforge:

- LAYERFORGE_MERGE_TWINS=0 runs tied twin branches separately (default: one batch of 2N,
  see twins.py); `Net(..., merge_twins=...)` overrides it.
- LAYERFORGE_MNIST: the folder of the four MNIST IDX files (`layerforge data mnist`).
- OPENBLAS_NUM_THREADS: when set, layerforge leaves numpy's BLAS threads as they are.
"""
import os


def merge_twins():
    return os.environ.get("LAYERFORGE_MERGE_TWINS", "1") != "0"


def mnist_folder():
    return os.environ.get("LAYERFORGE_MNIST") or None


def blas_threads_set_by_user():
    return os.environ.get("OPENBLAS_NUM_THREADS") is not None
