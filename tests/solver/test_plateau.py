"""Reduce-on-plateau and early stopping on a scripted test output."""
import logging

import pytest

from layerforge.solvers import get_solver
from tests.solver.helpers import linear_net, solver_param


def scripted_solver(tmp_path, values, settings, max_iter):
    net = linear_net() + ('layer { name: "script" type: "SolverTestScript" top: "score" '
                          f'python_param {{ param_str: "{",".join(map(str, values))}" }} '
                          'include { phase: TEST } }')
    # base_lr 1 makes this regression diverge; the scripted test outputs are what matters here
    text = (f'base_lr: 1.0 max_iter: {max_iter} display: 1 test_iter: 1 test_interval: 1 '
            f'snapshot_prefix: "{tmp_path}/s" divergence_guard: false {settings}')
    solver = get_solver(solver_param(net, text))
    events = []
    solver.callbacks.append(events.append)
    return solver, events


def test_plateau_reduces_with_patience_cooldown_and_min_lr(tmp_path):
    values = [1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3]
    settings = ("plateau { monitor: \"score\" mode: MAXIMIZE factor: 0.5 patience: 2 cooldown: 1 "
                "min_lr: 0.2 }")
    solver, events = scripted_solver(tmp_path, values, settings, max_iter=11)
    solver.solve()
    rates = [e["lr"] for e in events if e["event"] == "train" and e["iter"] < 11]
    assert rates == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2], rel=1e-6)
    assert [e["iter"] for e in events if e["event"] == "train"][-1] == 11  # the final display


def test_plateau_min_delta_and_minimize(tmp_path):
    values = [5, 4.5, 4.2, 3.0, 2.95]
    settings = "plateau { monitor: \"score\" mode: MINIMIZE factor: 0.1 patience: 1 min_delta: 0.6 }"
    solver, events = scripted_solver(tmp_path, values, settings, max_iter=5)
    solver.solve()
    rates = [e["lr"] for e in events if e["event"] == "train" and e["iter"] < 5]
    # 4.5 is not 0.6 below 5 -> cut; 4.2 and 3.0 improve by more than 0.6; 2.95 does not -> cut.
    assert rates == pytest.approx([1, 0.1, 0.1, 0.1, 0.01], rel=1e-6)


def test_early_stopping_stops_snapshots_and_names_the_best(tmp_path, caplog):
    values = [1, 1.2, 1.4, 1.6, 1.7, 1.8, 1.9, 5]
    settings = "early_stopping { monitor: \"score\" patience: 3 min_delta: 0.5 }"
    solver, events = scripted_solver(tmp_path, values, settings, max_iter=20)
    with caplog.at_level(logging.INFO, logger="layerforge"):
        solver.solve()
    assert solver.iter == 6
    assert events[-1] == {"event": "stop", "iter": 6, "reason": "early_stopping"}
    assert [e["iter"] for e in events if e["event"] == "snapshot"] == [6]
    assert "has not improved for 3 tests; best 1.6 at iteration 3" in caplog.text


def test_log_lines_are_caffe_style(tmp_path, caplog):
    solver, _ = scripted_solver(tmp_path, [0.25], "", max_iter=2)
    with caplog.at_level(logging.INFO, logger="layerforge"):
        solver.solve()
    lines = caplog.text
    for expected in ("Iteration 0, Testing net (#0)", "    Test net output #1: score = 0.25",
                     "Iteration 1, lr = 1", "Snapshotting to binary proto file "
                     f"{tmp_path}/s_iter_2.caffemodel", "Optimization Done."):
        assert expected in lines
    assert "    Test net output #0: loss = " in lines and "(* 1 = " in lines
