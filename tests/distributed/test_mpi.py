"""Data-parallel training under mpiexec: 2 ranks x B pairs train exactly like 1 process x 2B.

These tests start real MPI jobs (mpiexec from the `mpich` wheel, mpi4py) on synthetic data the
test writes; they skip with the reason when no MPI launcher is installed.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from layerforge import io
from layerforge.data.store import datums, write_lmdb
from layerforge.proto import layerforge_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(
    MPIEXEC is None or __import__("importlib").util.find_spec("mpi4py") is None,
    reason="needs mpi4py and an MPI launcher (pip install 'layerforge[mpi]')")


def _lmdbs(folder):
    rng = np.random.default_rng(0)
    paths = {}
    for name, count in (("train", 1280), ("test", 256)):
        labels = rng.integers(0, 10, count)
        images = (rng.integers(0, 60, (count, 1, 28, 28)) + 18 * labels[:, None, None, None]).astype(np.uint8)
        paths[name] = write_lmdb(folder / f"{name}_lmdb", datums(images, labels))
    return paths


def _solver(folder, lmdbs, pairs, name, max_iter=20, snapshot=0):
    """The MNIST Siamese solver and net on synthetic data, `pairs` per batch (per rank)."""
    net = io.read_net(ROOT / "prototxt" / "mnist_siamese_train_test.prototxt")
    for layer in net.layer:
        if layer.type == "Data":
            phase = "train" if layer.include[0].phase == pb.TRAIN else "test"
            layer.data_param.source = str(lmdbs[phase])
            layer.data_param.batch_size = pairs
    solver = io.read_solver(ROOT / "solvers" / "mnist_siamese_solver.prototxt")
    solver.ClearField("net")
    solver.net_param.CopyFrom(net)
    solver.max_iter, solver.test_interval, solver.display = max_iter, 10, 5
    del solver.test_iter[:]
    solver.test_iter.append(4)
    solver.snapshot = snapshot
    solver.snapshot_prefix = str(folder / name / "siamese")
    path = folder / f"{name}_solver.prototxt"
    io.write_text(solver, path)
    return path


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
    lmdbs = _lmdbs(tmp_path)
    one = _train(_solver(tmp_path, lmdbs, 64, "one"), 1)
    two = _train(_solver(tmp_path, lmdbs, 32, "two"), 2)
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
    lmdbs = _lmdbs(tmp_path)
    first = _train(_solver(tmp_path, lmdbs, 32, "run", max_iter=10, snapshot=10), 2)
    assert first.returncode == 0, first.stderr[-2000:]
    state = tmp_path / "run" / "siamese_iter_10.solverstate"
    resumed = _train(_solver(tmp_path, lmdbs, 64, "run", max_iter=20), 1, "--snapshot", str(state))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "run" / "siamese_iter_20.caffemodel").exists()


def test_a_rank_that_dies_ends_the_run(tmp_path):
    lmdbs = _lmdbs(tmp_path)
    solver = _solver(tmp_path, lmdbs, 32, "dies", max_iter=100000)
    command = [MPIEXEC, "-n", "2", sys.executable, str(Path(__file__).with_name("kill_rank.py")), str(solver)]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode != 0
    assert time.monotonic() - start < 30
