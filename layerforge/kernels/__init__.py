"""Numba kernels: plain functions over arrays, no framework imports (see DESIGN §7)."""
import os

# Numba's OpenMP workers and OpenBLAS's threads take turns on the same 2 cores; with
# OpenMP's default spin-waiting, each GEMM after a parallel kernel ran several times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
