"""A diverging run stops early and leaves a snapshot of its last truly good state, from which a
run with a sane learning rate trains normally."""
import numpy as np
import pytest

from layerforge import io
from layerforge.proto import layerforge_pb2 as pb
from layerforge.solvers import TrainingDiverged, get_solver
from layerforge.solvers.guard import PATIENCE, DivergenceGuard
from tests.synthetic import ROOT, siamese_lmdbs


def lenet_solver(tmp_path, base_lr, max_iter):
    lmdbs = siamese_lmdbs(tmp_path)
    net = io.read_net(ROOT / "prototxt" / "lenet_train_test.prototxt")
    for layer in net.layer:
        if layer.type == "Data":
            layer.data_param.source = str(lmdbs["train" if layer.include[0].phase == pb.TRAIN else "test"])
    param = io.read_solver(ROOT / "solvers" / "lenet_solver.prototxt")
    param.ClearField("net")
    param.net_param.CopyFrom(net)
    param.base_lr, param.max_iter, param.test_interval, param.display, param.snapshot = base_lr, max_iter, 0, 0, 0
    del param.test_iter[:]
    param.snapshot_prefix = str(tmp_path / "lenet")
    return get_solver(param)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_keeps_a_state_that_resumes_at_a_lower_rate(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"The last good state \(iteration 0\) is saved") as error:
        lenet_solver(tmp_path, 1.0, 300).solve()
    model, state = error.value.snapshot
    weights = io.read_weights(model)
    largest = max(np.abs(io.blobproto_to_array(b)).max() for layer in weights.layer for b in layer.blobs)
    assert largest < 10                         # not the exploded weights
    resumed = lenet_solver(tmp_path, 0.01, 60)
    resumed.restore(state)
    losses = []
    resumed.callbacks.append(lambda e: e["event"] == "iteration" and losses.append(e["loss"]))
    resumed.solve()
    assert resumed.iter == 60 and all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])


def test_guard_counts_strikes_in_a_row_and_keeps_only_healthy_states():
    guard = DivergenceGuard()
    guard.keep(0, lambda: "state 0")
    for loss in (3.0, 2.0, 1.0, 0.5):              # large updates, but the loss keeps falling
        assert not guard.observe(1.0, 1.0, loss)
    assert not guard.healthy
    guard.keep(100, lambda: "state 100")          # not healthy: the old copy stays
    assert guard.kept == (0, "state 0")
    assert not guard.observe(1e-4, 1.0, 0.5)       # a small update ends the streak
    guard.keep(100, lambda: "state 100")
    assert guard.kept == (100, "state 100")
    losses = [2.0] * PATIENCE
    assert [guard.observe(1.0, 1.0, loss) for loss in losses] == [False] * (PATIENCE - 1) + [True]
    guard = DivergenceGuard()
    assert guard.observe(float("inf"), 1.0, 1.0) and not guard.healthy


def test_a_captured_state_put_back_saves_the_same_snapshot(tmp_path):
    from layerforge.solvers import checkpoint

    solver = lenet_solver(tmp_path, 0.01, 100)
    solver.step(3)
    before = checkpoint.serialize(solver)
    state = checkpoint.capture(solver)
    solver.step(4)                                   # weights, history, readers, rngs and losses move on
    assert checkpoint.serialize(solver) != before
    checkpoint.put_back(solver, state)
    assert checkpoint.serialize(solver) == before    # both files, byte for byte
