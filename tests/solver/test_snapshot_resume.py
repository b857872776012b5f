"""Snapshots: file names, atomic writes, and bit-for-bit resume (weights, history, random
generators, data positions, lr schedule, plateau state and the loss window)."""
import os

import numpy as np
import pytest

from layerforge import io
from layerforge.io import ConfigError
from layerforge.proto import layerforge_pb2 as pb
from layerforge.solvers import get_solver
from tests.solver.helpers import linear_net, solver_param

NOISY_NET = """name: "noisy"
layer { name: "seq" type: "SolverTestSeq" top: "data" top: "target"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
layer { name: "noise" type: "DummyData" top: "noise"
        dummy_data_param { shape { dim: 4 dim: 3 } data_filler { type: "gaussian" std: 0.1 } } }
layer { name: "sum" type: "Eltwise" bottom: "data" bottom: "noise" top: "x" }
layer { name: "drop" type: "Dropout" bottom: "x" top: "x" dropout_param { dropout_ratio: 0.3 } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "target" top: "loss" }
"""


def noisy_solver(prefix, max_iter=12):
    text = (f'type: "Adam" base_lr: 0.05 momentum: 0.9 weight_decay: 0.01 lr_policy: "multistep" '
            f'gamma: 0.5 stepvalue: 6 max_iter: {max_iter} display: 1 average_loss: 3 '
            f'test_iter: 2 test_interval: 4 snapshot: 4 snapshot_prefix: "{prefix}" random_seed: 7 '
            f'plateau {{ monitor: "loss" mode: MINIMIZE patience: 1 factor: 0.5 min_delta: 10 }}')
    solver = get_solver(solver_param(NOISY_NET, text))
    events = []
    solver.callbacks.append(events.append)
    return solver, events


def reported(events, start):
    return [e for e in events if e["event"] in ("train", "test") and e["iter"] >= start]


def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(tmp_path):
    full, full_events = noisy_solver(tmp_path / "full" / "run")
    full.solve()
    assert full.lr_scale < 1                                  # the plateau did act
    resumed, resumed_events = noisy_solver(tmp_path / "resumed" / "run")
    resumed.solve(resume=tmp_path / "full" / "run_iter_8.solverstate")
    assert resumed.iter == full.iter == 12
    for a, b in zip(full.net.learnable_params, resumed.net.learnable_params):
        np.testing.assert_array_equal(a.data, b.data)
    for a, b in zip(full.history, resumed.history):
        np.testing.assert_array_equal(a, b)
    assert reported(resumed_events, 8) == reported(full_events, 8)
    assert resumed.lr_scale == full.lr_scale and resumed.current_step == full.current_step
    same = (tmp_path / "full" / "run_iter_12.caffemodel").read_bytes()
    assert (tmp_path / "resumed" / "run_iter_12.caffemodel").read_bytes() == same


def test_snapshot_files_and_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    solver = get_solver(solver_param(linear_net(), 'base_lr: 0.1 momentum: 0.9 max_iter: 5 snapshot: 2 '
                                                   'snapshot_prefix: "snaps/lin"'))
    snapshots = []
    solver.callbacks.append(lambda e: e["event"] == "snapshot" and snapshots.append(e))
    solver.solve()
    assert [e["iter"] for e in snapshots] == [2, 4, 5]        # interval, then snapshot_after_train
    names = sorted(os.listdir(tmp_path / "snaps"))
    assert names == [f"lin_iter_{i}.{ext}{check}" for i in (2, 4, 5) for ext in ("caffemodel", "solverstate")
                     for check in ("", ".sha256")]
    state = io.read_binary(tmp_path / "snaps" / "lin_iter_5.solverstate", pb.SolverState())
    assert state.iter == 5 and state.learned_net == "snaps/lin_iter_5.caffemodel"
    np.testing.assert_array_equal(io.blobproto_to_array(state.history[0]), solver.history[0])
    weights = io.read_weights(tmp_path / "snaps" / "lin_iter_5.caffemodel")
    ip = next(layer for layer in weights.layer if layer.name == "ip")
    np.testing.assert_array_equal(io.blobproto_to_array(ip.blobs[0]), solver.net.params["ip"][0].data)


def test_restore_finds_moved_snapshots_next_to_the_state(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = get_solver(solver_param(linear_net(), 'base_lr: 0.1 max_iter: 3 snapshot_prefix: "a/run"'))
    first.solve()
    os.rename(tmp_path / "a", tmp_path / "moved")
    second = get_solver(solver_param(linear_net(), 'base_lr: 0.1 max_iter: 3'))
    second.restore(tmp_path / "moved" / "run_iter_3.solverstate")
    assert second.iter == 3
    np.testing.assert_array_equal(second.net.params["ip"][0].data, first.net.params["ip"][0].data)


def test_failed_snapshot_leaves_the_previous_one_and_no_temporary_files(tmp_path, monkeypatch):
    solver = get_solver(solver_param(linear_net(), f'base_lr: 0.1 max_iter: 2 snapshot_prefix: "{tmp_path}/s"'))
    solver.step(2)
    model, state = solver.snapshot()
    before = open(model, "rb").read(), open(state, "rb").read()
    solver.net.params["ip"][0].data[...] += 1
    solver.history[0][...] += 1

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(ConfigError, match="No space"):
        solver.snapshot()
    monkeypatch.undo()
    assert (open(model, "rb").read(), open(state, "rb").read()) == before
    assert sorted(os.listdir(tmp_path)) == ["s_iter_2.caffemodel", "s_iter_2.caffemodel.sha256",
                                            "s_iter_2.solverstate", "s_iter_2.solverstate.sha256"]


def test_restore_from_another_net_or_solver_type_is_a_clear_error(tmp_path):
    sgd = get_solver(solver_param(linear_net(), f'base_lr: 0.1 max_iter: 1 snapshot_prefix: "{tmp_path}/s"'))
    sgd.solve()
    state_path = str(tmp_path / "s_iter_1.solverstate")
    adam = get_solver(solver_param(linear_net(), 'type: "Adam" base_lr: 0.1'))
    with pytest.raises(ConfigError, match=r"s_iter_1\.solverstate: holds 2 history blob\(s\).*another net or solver type"):
        adam.restore(state_path)
    wider = get_solver(solver_param(linear_net(dim=5), 'base_lr: 0.1'))
    with pytest.raises(ConfigError, match=r"s_iter_1\.solverstate: history blob 0 has shape \(2, 3\).*'w'"):
        wider.restore(state_path)
    with pytest.raises(ConfigError, match="missing.solverstate: file not found"):
        sgd.restore(tmp_path / "missing.solverstate")
    (tmp_path / "junk.solverstate").write_bytes(b"\xff\xff\xff")
    with pytest.raises(ConfigError, match="junk.solverstate: not a valid SolverState"):
        sgd.restore(tmp_path / "junk.solverstate")
