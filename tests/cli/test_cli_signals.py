"""How `layerforge train` ends: a signal stops it after the iteration in progress, with a
snapshot of it, and the exit status says which signal it was (128 + its number); a run that
ends before its first test interval tests once."""
import signal
import subprocess
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


def test_a_run_shorter_than_test_interval_tests_once_at_the_end(tmp_path):
    solver = siamese_solver(tmp_path, siamese_lmdbs(tmp_path), 8, "short", max_iter=4)
    result = subprocess.run([sys.executable, "-m", "layerforge", "train", "--solver", str(solver)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Test net #0 (iteration 4):" in result.stdout
    log = (tmp_path / "short" / "siamese_log.jsonl").read_text()
    assert '"event": "test"' in log
