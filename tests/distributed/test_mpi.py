"""Data-parallel training under mpiexec: 2 ranks x B pairs train exactly like 1 process x 2B.

These tests start real MPI jobs (mpiexec from the `mpich` wheel, mpi4py) on synthetic data the
test writes; they skip with the reason when no MPI launcher is installed.
"""
import os
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from layerforge import io
from tests.synthetic import ROOT, run_until_logged, siamese_lmdbs, siamese_solver

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(
    MPIEXEC is None or __import__("importlib").util.find_spec("mpi4py") is None,
    reason="needs mpi4py and an MPI launcher (pip install 'layerforge[mpi]')")


def _train(solver, ranks, *extra, timeout=900):
    command = [sys.executable, "-m", "layerforge", "train", "--solver", str(solver), *extra]
    if ranks > 1:
        command = [MPIEXEC, "-n", str(ranks)] + command
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "LAYERFORGE_MERGE_TWINS": "1"})


def _weights(path):
    return {layer.name: [io.blobproto_to_array(b) for b in layer.blobs]
            for layer in io.read_weights(path).layer}


def _test_outputs(stdout):
    return {line.split("=")[0].strip(): float(line.split("=")[1])
            for line in stdout.splitlines() if line.startswith("    ") and "=" in line}


def test_two_ranks_train_like_one_process_with_twice_the_batch(tmp_path):
    lmdbs = siamese_lmdbs(tmp_path)
    one = _train(siamese_solver(tmp_path, lmdbs, 64, "one"), 1)
    two = _train(siamese_solver(tmp_path, lmdbs, 32, "two"), 2)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    single, parallel = (_weights(tmp_path / n / "siamese_iter_20.caffemodel") for n in ("one", "two"))
    assert single.keys() == parallel.keys()
    for name in single:
        for a, b in zip(single[name], parallel[name]):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(a).max()), err_msg=name)
    outputs_one, outputs_two = _test_outputs(one.stdout), _test_outputs(two.stdout)
    assert outputs_one and outputs_one.keys() == outputs_two.keys()
    for name, value in outputs_one.items():
        assert outputs_two[name] == pytest.approx(value, rel=1e-3, abs=1e-4), name
    assert two.stdout.count("Training log:") == 1          # rank 0 alone reports
    assert not (tmp_path / "two" / "siamese_iter_20.caffemodel.tmp").exists()


def test_resume_with_another_rank_count(tmp_path):
    lmdbs = siamese_lmdbs(tmp_path)
    first = _train(siamese_solver(tmp_path, lmdbs, 32, "run", max_iter=10, snapshot=10), 2)
    assert first.returncode == 0, first.stderr[-2000:]
    state = tmp_path / "run" / "siamese_iter_10.solverstate"
    resumed = _train(siamese_solver(tmp_path, lmdbs, 64, "run", max_iter=20), 1, "--snapshot", str(state))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "run" / "siamese_iter_20.caffemodel").exists()


def test_a_rank_that_dies_ends_the_run(tmp_path):
    lmdbs = siamese_lmdbs(tmp_path)
    solver = siamese_solver(tmp_path, lmdbs, 32, "dies", max_iter=100000)
    command = [MPIEXEC, "-n", "2", sys.executable, str(Path(__file__).with_name("kill_rank.py")), str(solver)]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode != 0
    assert time.monotonic() - start < 30


def test_a_nan_on_one_rank_stops_every_rank_at_that_iteration(tmp_path):
    lmdbs = siamese_lmdbs(tmp_path)
    solver = siamese_solver(tmp_path, lmdbs, 32, "nan", max_iter=100000)
    command = [MPIEXEC, "-n", "2", sys.executable, str(Path(__file__).with_name("nan_rank.py")), str(solver)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    stops = sorted(line for line in result.stdout.splitlines() if line.startswith("rank "))
    assert [line.split(":")[0] for line in stops] == ["rank 0 stopped at iteration 3",
                                                      "rank 1 stopped at iteration 3"], result.stdout + result.stderr[-2000:]
    assert "the loss is not finite on at least one rank (here: nan" in stops[1]
    assert sorted(p.name for p in (tmp_path / "nan").glob("*_iter_*")) == [
        "siamese_iter_3.caffemodel", "siamese_iter_3.caffemodel.sha256",
        "siamese_iter_3.solverstate", "siamese_iter_3.solverstate.sha256"]


def test_ctrl_c_to_mpiexec_snapshots_on_rank_0_and_every_rank_exits_130(tmp_path):
    lmdbs = siamese_lmdbs(tmp_path)
    solver = siamese_solver(tmp_path, lmdbs, 32, "stop", max_iter=100000)
    command = [MPIEXEC, "-n", "2", sys.executable, "-m", "layerforge", "train", "--solver", str(solver)]
    status, output = run_until_logged(command, "Iteration 10,", signal.SIGINT)
    assert status == 130, output[-2000:]
    saved = sorted(p.name for p in (tmp_path / "stop").glob("siamese_iter_*.solverstate"))
    assert len(saved) == 1, output[-2000:]
    assert "Stopped by SIGINT at iteration" in output
