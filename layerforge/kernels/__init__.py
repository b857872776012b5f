"""Numba kernels: plain functions over arrays, no framework imports.

Importing a kernel module changes nothing outside it: numpy's BLAS is registered for the
kernels on the first matrix product (blas.py), and its thread count is set only while a
Net runs (threads.blas_on_one_thread).
"""
