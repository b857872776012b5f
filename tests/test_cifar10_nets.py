"""BVLC's cifar10_full (LRN within channels) and its BatchNorm variant train a few iterations on
synthetic CIFAR-like LMDBs and a mean file the test writes, and their loss goes down."""
import pathlib

import numpy as np
import pytest

from layerforge.data.store import datums, write_lmdb
from layerforge.io import array_to_blobproto
from layerforge.solvers import get_solver

CONFIGS = pathlib.Path(__file__).resolve().parent / "configs"


def synthetic_images(count, rng):
    """3×32×32 uint8 images: noise, plus a bright 8×8 square whose place and colour give the class."""
    labels = np.arange(count) % 10
    images = rng.integers(0, 80, (count, 3, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        y, x = 8 * (label // 4) + 2, 8 * (label % 4)
        images[i, label % 3, y:y + 8, x:x + 8] += 150
    return images, labels


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory):
    """A folder holding examples/cifar10/{cifar10_train_lmdb, cifar10_test_lmdb, mean.binaryproto}."""
    folder = tmp_path_factory.mktemp("cifar")
    target = folder / "examples" / "cifar10"
    rng = np.random.default_rng(0)
    train = synthetic_images(200, rng)
    write_lmdb(target / "cifar10_train_lmdb", datums(*train))
    write_lmdb(target / "cifar10_test_lmdb", datums(*synthetic_images(100, rng)))
    mean = train[0].mean(axis=0, dtype=np.float64)[None].astype(np.float32)
    (target / "mean.binaryproto").write_bytes(array_to_blobproto(mean).SerializeToString())
    return folder


def train(solver_file, iterations):
    solver = get_solver(CONFIGS / solver_file)
    losses = []
    solver.callbacks.append(lambda event: losses.append(event["loss"]) if event["event"] == "iteration" else None)
    solver.step(iterations)
    return solver, np.array(losses)


@pytest.mark.parametrize("solver_file, types", [
    ("bvlc_cifar10_full_solver.prototxt", {"LRN"}),
    ("bvlc_cifar10_full_bn_solver.prototxt", {"BatchNorm", "Scale"}),
])
def test_trains_and_loss_goes_down(cifar_folder, monkeypatch, solver_file, types):
    monkeypatch.chdir(cifar_folder)
    solver, losses = train(solver_file, 12)
    net = solver.net
    assert types <= {layer.type_name for layer in net.layers.values()}
    assert net.blobs["data"].shape == (10, 3, 32, 32) and net.blobs["pool3"].shape == (10, 64, 4, 4)
    assert np.all(np.isfinite(losses)) and len(losses) == 12
    assert abs(losses[0] - np.log(10)) < 0.1          # starts at chance
    assert losses[-3:].mean() < losses[:3].mean() - 0.1, losses
    accuracy = solver.test(0)["accuracy"]
    assert accuracy > 0.2, accuracy                    # chance is 0.1


def test_batch_norm_statistics_are_not_learned(cifar_folder, monkeypatch):
    """The BatchNorm blobs are not solver parameters; after k iterations the scale factor is
    Σ 0.999^i (i < k), and the test net (global statistics) reads the train net's blobs."""
    monkeypatch.chdir(cifar_folder)
    solver, _ = train("bvlc_cifar10_full_bn_solver.prototxt", 3)
    net = solver.net
    statistics = [blob for name in ("bn1", "bn2", "bn3") for blob in net.params[name]]
    assert not any(blob is p for blob in statistics for p in net.learnable_params)
    assert len(net.learnable_params) == 3 + 3 * 2 + 2  # convs (no bias), Scale γ and β, ip1
    f = np.float32(0.999)
    np.testing.assert_allclose(net.params["bn1"][2].data, [1 + f + f * f], rtol=1e-6)
    test_net = solver.test_nets[0]
    assert all(a is b for a, b in zip(test_net.params["bn2"], net.params["bn2"]))
    assert test_net.layers["bn2"].use_global_stats and not net.layers["bn2"].use_global_stats
