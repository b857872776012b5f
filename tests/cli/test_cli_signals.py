"""A signal stops `layerforge train` after the iteration in progress, with a snapshot of it,
and the exit status says which signal it was (128 + its number)."""
import signal
import sys

import pytest

from layerforge import io
from layerforge.proto import layerforge_pb2 as pb
from tests.synthetic import run_until_logged, siamese_lmdbs, siamese_solver


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_snapshots_and_exits_with_its_status(tmp_path, signum, status):
    solver = siamese_solver(tmp_path, siamese_lmdbs(tmp_path), 8, "run", max_iter=100000)
    command = [sys.executable, "-m", "layerforge", "train", "--solver", str(solver)]
    code, output = run_until_logged(command, "Iteration 5,", signum)
    assert code == status, output[-2000:]
    states = list((tmp_path / "run").glob("siamese_iter_*.solverstate"))
    assert len(states) == 1
    iteration = io.read_binary(states[0], pb.SolverState()).iter
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"Stopped by {signal.Signals(signum).name} at iteration ")
    assert f"at iteration {iteration}:" in last and states[0].name.replace(".solverstate", ".caffemodel") in last
