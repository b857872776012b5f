"""A stop (Ctrl-C) in the middle of a test pass does not shift later test outputs: the test
nets' readers are put back to where the pass began, so resuming repeats the uninterrupted run."""
import pytest

from layerforge.solvers import get_solver
from tests.solver.helpers import solver_param
from tests.solver.test_snapshot_resume import NOISY_NET


def _solver(prefix):
    text = (f'type: "Adam" base_lr: 0.05 momentum: 0.9 max_iter: 12 display: 0 test_iter: 3 '
            f'test_interval: 4 snapshot: 0 snapshot_prefix: "{prefix}" random_seed: 7 '
            f'early_stopping {{ monitor: "loss" mode: MINIMIZE patience: 100 }}')
    solver = get_solver(solver_param(NOISY_NET, text))
    tests = []
    solver.callbacks.append(lambda e: e["event"] == "test" and tests.append((e["iter"], e["outputs"])))
    return solver, tests


@pytest.mark.parametrize("batches_done", [1, 2])
def test_resume_after_a_stop_inside_a_test_pass_repeats_the_outputs(tmp_path, batches_done):
    full, expected = _solver(tmp_path / "full")
    full.solve()
    assert [i for i, _ in expected] == [0, 4, 8, 12]

    stopped, _ = _solver(tmp_path / "stopped")
    net, forward, calls = stopped.test_nets[0], stopped.test_nets[0].forward, []

    def forward_then_ctrl_c(**inputs):
        outputs = forward(**inputs)
        if stopped.iter == 8:
            calls.append(1)
            if len(calls) == batches_done:
                stopped.request_stop("sigint")
        return outputs

    net.forward = forward_then_ctrl_c
    stopped.solve()
    assert stopped.stop_reason == "sigint" and stopped.iter == 8

    resumed, outputs = _solver(tmp_path / "stopped")
    resumed.solve(resume=tmp_path / "stopped_iter_8.solverstate")
    assert outputs == [e for e in expected if e[0] >= 8]
