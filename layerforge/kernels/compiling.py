"""Tell the user when Numba compiles, so the first run after an install does not look hung.

Numba compiles a kernel on its first call with new argument types, unless its on-disk cache
(`cache=True`: `__pycache__` next to the kernels, or $NUMBA_CACHE_DIR) already holds it. The
first `layerforge train` after an install therefore spends many seconds compiling before its
first iteration. `on_first_compile(callback)` calls `callback()` once, when the first real
compilation starts inside the block; loading a kernel from the cache is not a compilation,
so a run with a warm cache pays only for installing one event listener.
"""
import contextlib

from numba.core import event

MESSAGE = "compiling Numba kernels (first run only; later runs load them from the cache) ..."


class _FirstCompile(event.Listener):
    def __init__(self, callback):
        self.callback = callback
        self.fired = False

    def on_start(self, ev):
        if not self.fired:
            self.fired = True
            self.callback()

    def on_end(self, ev):
        pass


@contextlib.contextmanager
def on_first_compile(callback):
    """Within the block, call `callback()` when Numba starts its first compilation (once)."""
    with event.install_listener("numba:compile", _FirstCompile(callback)) as listener:
        yield listener
