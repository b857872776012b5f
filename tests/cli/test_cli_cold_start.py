"""The first `layerforge train` on an empty Numba cache says that it compiles; a warm run does not."""
import os
import pathlib
import subprocess
import sys

import numba

from layerforge.kernels.compiling import MESSAGE, on_first_compile
from tests.cli import write_solver

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _train(solver, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    result = subprocess.run([sys.executable, "-m", "layerforge", "train", "--solver", str(solver),
                             "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def test_train_announces_compilation_on_a_cold_cache_only(tmp_path):
    solver = write_solver(tmp_path, max_iter=2, snapshot=0, display=1)
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    cold = _train(solver, cache)
    assert MESSAGE in cold
    assert cold.index(MESSAGE) < cold.index("Iteration 0, loss")   # before the first iteration
    assert any(cache.rglob("*.nbi"))                              # the kernels went to that cache
    warm = _train(solver, cache)
    assert "Iteration 1" in warm and MESSAGE not in warm


def test_on_first_compile_calls_back_once_and_not_for_compiled_code():
    calls = []

    @numba.njit
    def twice(x):
        return 2 * x

    @numba.njit
    def thrice(x):
        return 3 * x

    with on_first_compile(lambda: calls.append(1)):
        assert twice(2) == 4 and thrice(2) == 6
    assert calls == [1]
    with on_first_compile(lambda: calls.append(2)):
        assert twice(3) == 6                                     # already compiled: no callback
    assert calls == [1]


def test_progress_bar_says_compiling_until_the_first_iteration():
    import io

    from tqdm import tqdm

    from layerforge.cli import _CompileNotice

    stream = io.StringIO()
    bar = tqdm(total=10, file=stream, mininterval=0)
    notice = _CompileNotice()
    notice.show(bar)
    notice()                                                     # Numba starts compiling
    assert stream.getvalue().split("\r")[-1].startswith("compiling Numba kernels")   # the bar as shown now
    notice.done(bar)
    bar.update(1)
    assert "compiling" not in stream.getvalue().split("\r")[-1]
    bar.close()
