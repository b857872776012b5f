"""Numba's workers start with layerforge's wait policy, set only for that moment."""
import os
import subprocess
import sys

import numba

from layerforge import config

CODE = """
import os, numpy as np
import layerforge
from layerforge.kernels import threads
from numba.np.ufunc import parallel
assert not parallel._is_initialized   # nothing starts at import
threads.start_workers()
print(os.environ.get("GOMP_SPINCOUNT"), os.environ.get("OMP_WAIT_POLICY"), parallel._is_initialized)
"""


def run(env):
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    return subprocess.run([sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True,
                          text=True, check=True, timeout=120).stdout.split()


def test_workers_start_without_leaving_the_setting_in_the_environment():
    started = str(not numba.config.DISABLE_JIT)   # without JIT there are no workers to start
    assert run({}) == ["None", "None", started]


def test_a_wait_policy_the_user_set_is_kept():
    # the workers then start with the first parallel kernel, under the user's setting
    assert run({"OMP_WAIT_POLICY": "PASSIVE"}) == ["None", "PASSIVE", "False"]
    assert run({"GOMP_SPINCOUNT": "5"}) == ["5", "None", "False"]


def test_worker_spin_yields_to_the_users_setting(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert config.worker_spin() == config.WORKER_SPIN
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert config.worker_spin() is None
