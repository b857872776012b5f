"""Numba kernels: plain functions over arrays, no framework imports (see DESIGN §7).

Importing any kernel (every layer does; so do the solvers and `import layerforge`) first
loads kernels/blas.py, which makes matrix products run on Numba's own threads through
numpy's OpenBLAS, set to one thread of its own (unless OPENBLAS_NUM_THREADS is set). With
one pool of threads for kernels and products, Numba's OpenMP workers keep GNU OpenMP's
default: they spin for a moment after each parallel loop before they sleep, so the next
kernel or product of the step finds them awake. (OpenBLAS's own threads, next to Numba's,
stalled for whole time slices when the machine had other work, measured in the first
session; a separate helper thread for products made Numba's workers sleep around each one.)
"""
from layerforge.kernels import blas  # noqa: F401  (registers numpy's BLAS for the kernels)
