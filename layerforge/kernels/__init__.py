"""Numba kernels: plain functions over arrays, no framework imports.

Importing a kernel module changes nothing outside it: numpy's BLAS is registered for the
kernels on the first matrix product (blas.py), and its thread count is set only while a
Net runs (threads.blas_on_one_thread).
Numba's cache folder is only set when its defaults are not writable (config.numba_cache_fallback).
"""
import os
import sys

from layerforge import config

if config.numba_cache_fallback(os.path.dirname(os.path.abspath(__file__))) and "numba" in sys.modules:
    sys.modules["numba"].config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
