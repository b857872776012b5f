"""Ctrl-C during solve() snapshots and stops; a NaN/Inf loss or gradient stops with
TrainingDiverged naming the layer, after snapshotting the last good state."""
import os
import signal
import threading

import numpy as np
import pytest

from layerforge import io
from layerforge.solvers import TrainingDiverged, get_solver
from tests.solver.helpers import linear_net, solver_param


def linear_solver(tmp_path, extra="", net=None):
    text = f'base_lr: 0.1 momentum: 0.9 max_iter: 10 snapshot_prefix: "{tmp_path}/s" {extra}'
    solver = get_solver(solver_param(net or linear_net(), text))
    events = []
    solver.callbacks.append(events.append)
    return solver, events


def interrupt_at(solver, iteration, times=1):
    def callback(event):
        if event["event"] == "iteration" and event["iter"] == iteration:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)
    solver.callbacks.append(callback)


def test_first_sigint_finishes_the_iteration_snapshots_and_stops(tmp_path):
    previous = signal.getsignal(signal.SIGINT)
    solver, events = linear_solver(tmp_path, "snapshot_after_train: false")
    interrupt_at(solver, 3)
    solver.solve()
    assert solver.iter == 3
    assert sorted(os.listdir(tmp_path)) == ["s_iter_3.caffemodel", "s_iter_3.caffemodel.sha256",
                                            "s_iter_3.solverstate", "s_iter_3.solverstate.sha256"]
    assert events[-1] == {"event": "stop", "iter": 3, "reason": "sigint"}
    assert signal.getsignal(signal.SIGINT) is previous


def test_second_sigint_aborts_at_once(tmp_path):
    previous = signal.getsignal(signal.SIGINT)
    solver, _ = linear_solver(tmp_path)
    interrupt_at(solver, 2, times=2)
    with pytest.raises(KeyboardInterrupt):
        solver.solve()
    assert solver.iter == 2
    assert signal.getsignal(signal.SIGINT) is previous


def test_solve_outside_the_main_thread_leaves_signals_alone(tmp_path):
    solver, events = linear_solver(tmp_path)
    errors = []
    thread = threading.Thread(target=lambda: _run(solver, errors))
    thread.start()
    thread.join()
    assert errors == [] and solver.iter == 10 and events[-1]["reason"] == "max_iter"


def _run(solver, errors):
    try:
        solver.solve()
    except Exception as err:      # reported to the main thread
        errors.append(err)


def blowup_net(setting):
    return linear_net().replace(
        'layer { name: "loss" type: "EuclideanLoss" bottom: "y"',
        f'layer {{ name: "blowup" type: "SolverTestBlowUp" bottom: "y" top: "z" '
        f'python_param {{ param_str: "{setting}" }} }}\n'
        'layer { name: "loss" type: "EuclideanLoss" bottom: "z"')


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # Inf·0 in backward
@pytest.mark.parametrize("setting, message", [
    ("4", "the loss is nan; the first layer whose top went non-finite is 'blowup'"),
    ("grad:4", "the gradient of parameter 'w' is not finite"),
])
def test_nonfinite_stops_and_keeps_the_last_good_state(tmp_path, setting, message):
    solver, events = linear_solver(tmp_path, net=blowup_net(setting))
    good = {}
    solver.callbacks.append(lambda e: e["event"] == "iteration" and e["iter"] == 4 and good.update(
        w=solver.net.params["ip"][0].data.copy(), history=solver.history[0].copy()))
    with pytest.raises(TrainingDiverged, match=f"Iteration 4: {message}") as error:
        solver.solve()
    if setting == "4":
        assert error.value.layer == "blowup"
    assert error.value.snapshot == (f"{tmp_path}/s_iter_4.caffemodel", f"{tmp_path}/s_iter_4.solverstate")
    assert events[-1] == {"event": "stop", "iter": 4, "reason": "diverged"}
    weights = io.read_weights(error.value.snapshot[0])
    saved = io.blobproto_to_array(next(layer for layer in weights.layer if layer.name == "ip").blobs[0])
    np.testing.assert_array_equal(saved, good["w"])
    np.testing.assert_array_equal(solver.net.params["ip"][0].data, good["w"])
    resumed, _ = linear_solver(tmp_path)
    resumed.restore(error.value.snapshot[1])
    np.testing.assert_array_equal(resumed.history[0], good["history"])
