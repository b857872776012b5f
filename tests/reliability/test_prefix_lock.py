"""Two training runs with one snapshot_prefix cannot mix their files: the second fails at
once with one line naming the first run's PID (exit 2); the lock goes with the first run."""
import os
import signal
import subprocess
import sys
import time

import pytest

from layerforge.io import ConfigError
from layerforge.solvers.checkpoint import prefix_lock
from tests.synthetic import ROOT

TRAIN = [sys.executable, "-m", "layerforge", "train", "--solver"]


def _tiny_solver(tmp_path):
    """A net that trains fast (no LMDB, small kernels), logging every iteration."""
    (tmp_path / "net.prototxt").write_text(
        'name: "tiny"\nlayer { name: "data" type: "DummyData" top: "data" top: "target" dummy_data_param '
        '{ shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } data_filler { type: "gaussian" } } }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "y" inner_product_param '
        '{ num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }\n'
        'layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "target" top: "loss" }\n')
    path = tmp_path / "solver.prototxt"
    path.write_text(f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.001 max_iter: 100000000 display: 1 '
                    f'snapshot_prefix: "{tmp_path / "run" / "siamese"}"')
    return path


def _start_and_wait(command, text, timeout=300):
    """A running `command` whose output has shown `text`."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if text in line:
            return process
        if time.monotonic() > deadline:
            break
    process.kill()
    raise AssertionError(f"{text!r} never appeared")


@pytest.mark.parametrize("end", [signal.SIGINT, signal.SIGKILL])
def test_second_run_on_the_same_prefix_fails_naming_the_first(tmp_path, end):
    solver = _tiny_solver(tmp_path)
    first = _start_and_wait(TRAIN + [str(solver)], "Iteration 5,")
    try:
        logged = (tmp_path / "run" / "siamese_log.jsonl").read_text()
        second = subprocess.run(TRAIN + [str(solver)], capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert second.returncode == 2
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert f"another training run (PID {first.pid})" in second.stderr
        assert str(tmp_path / "run" / "siamese.lock") in second.stderr
        assert (tmp_path / "run" / "siamese_log.jsonl").read_text().startswith(logged)  # not truncated
    finally:
        first.send_signal(end)
        first.communicate(timeout=300)
    if end == signal.SIGINT:
        assert not (tmp_path / "run" / "siamese.lock").exists()
    with prefix_lock(str(tmp_path / "run" / "siamese")) as path:   # released, even by a killed run
        assert open(path).read().strip() == str(os.getpid())


def test_lock_in_one_process_is_exclusive(tmp_path):
    with prefix_lock(str(tmp_path / "p")):
        child = subprocess.run([sys.executable, "-c", "import sys; from layerforge.solvers.checkpoint "
                                "import prefix_lock\nwith prefix_lock(sys.argv[1]): pass", str(tmp_path / "p")],
                               capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert child.returncode == 1 and f"PID {os.getpid()}" in child.stderr
    with pytest.raises(ConfigError, match="another training run"):
        with prefix_lock(str(tmp_path / "q")):
            with prefix_lock(str(tmp_path / "q")):     # a second open file is a second holder
                pass
