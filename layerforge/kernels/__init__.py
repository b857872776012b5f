"""Numba kernels: plain functions over arrays, no framework imports (see DESIGN §7)."""
