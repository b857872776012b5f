"""Shared test setup.

Kernel tests call `kernel.py_func` for the pure-Python path. Under NUMBA_DISABLE_JIT=1
(tests/test_no_jit.py) the kernels are plain functions already, so give them a `py_func`
that is themselves and the same tests run unchanged.
"""
import importlib
import pkgutil

import numba

if numba.config.DISABLE_JIT:
    import layerforge.kernels

    for _info in pkgutil.iter_modules(layerforge.kernels.__path__):
        _module = importlib.import_module(f"layerforge.kernels.{_info.name}")
        for _value in vars(_module).values():
            if callable(_value) and getattr(_value, "__module__", None) == _module.__name__:
                _value.py_func = getattr(_value, "py_func", _value)
