"""Numba kernels: plain functions over arrays, no framework imports (see DESIGN §7).

Importing any kernel (every layer does; so do the solvers and `import layerforge`) first
sets the threading that suits a small machine, before any kernel runs:
- Numba's OpenMP workers sleep when idle instead of spinning (OMP_WAIT_POLICY=PASSIVE,
  unless already set), so they leave the cores to the BLAS threads between kernels;
- OpenBLAS runs one thread, and layerforge splits each large product over its own two
  threads (kernels/blas.py): OpenBLAS's own threads stalled for whole time slices when
  the machine had other work (unless OPENBLAS_NUM_THREADS is set).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from layerforge.kernels import blas  # noqa: E402,F401  (sets OpenBLAS to one thread)
