"""Numba kernels: plain functions over arrays, no framework imports.

Importing a kernel module changes nothing outside it: numpy's BLAS is registered for the
kernels on the first matrix product (blas.py), and its thread count is set only while a
Net runs (threads.blas_on_one_thread).
Numba's cache folder is set, in Numba's config, only when its defaults are not writable
(config.numba_cache_fallback).
"""
import os

import numba

from layerforge import config

_fallback = config.numba_cache_fallback(os.path.dirname(os.path.abspath(__file__)))
if _fallback:
    numba.config.CACHE_DIR = _fallback
