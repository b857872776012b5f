"""An install whose kernels folder and $HOME cannot hold Numba's cache still runs: the cache
falls back to a private temporary folder, set in Numba's config rather than the environment
(config.numba_cache_fallback); nothing changes when a default is writable."""
import os
import shutil
import subprocess
import sys

from layerforge import config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_unwritable_cache_folders_still_run_kernels(tmp_path):
    # Files where the folders should be: not writable even by root (which ignores file modes).
    install = tmp_path / "install"
    shutil.copytree(os.path.join(ROOT, "layerforge"), install / "layerforge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for folder, _, _ in os.walk(install / "layerforge"):
        (install / folder / "__pycache__").write_text("")
    home = tmp_path / "home"
    home.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(install), TMPDIR=str(temp))
    code = ("import numpy as np, os, numba; from layerforge.kernels.updates import sum_squares; "
            "print(sum_squares(np.ones(4, np.float32)), numba.config.CACHE_DIR, "
            "os.environ.get('NUMBA_CACHE_DIR', 'unset'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(temp), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    value, folder, environment = done.stdout.split()
    assert float(value) == 4.0 and environment == "unset"
    assert folder == str(temp / f"layerforge-numba-{os.getuid()}")
    assert os.listdir(folder)     # the kernel was cached there


def test_writable_defaults_change_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    kernels = tmp_path / "kernels"
    assert config.numba_cache_fallback(str(kernels)) is None
    assert "NUMBA_CACHE_DIR" not in os.environ
    assert not kernels.exists()     # judged by permissions: nothing created to find out
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert config.numba_cache_fallback("/nonexistent/kernels") is None
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")
