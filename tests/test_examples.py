"""Every net in prototxt/ and every solver in solvers/ parses, builds and runs.

The nets read `data/mnist/mnist_{train,test}_lmdb` and `data/omniglot*/{train,val}`
relative to the working directory, so the tests run in a temporary folder holding small
synthetic LMDBs of those shapes. Koch et al.'s Omniglot net (1 GFLOP per image at 105 x 105)
is left to tests/test_omniglot_nets.py, which runs it at a small batch.
"""
import pathlib

import numpy as np
import pytest

from layerforge import get_solver, io
from layerforge.data.omniglot import build_omniglot_lmdb
from layerforge.data.store import datums, write_lmdb
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb
from tests.omniglot_zips import make_zip

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY = "omniglot_koch"
NETS = sorted(p for p in (ROOT / "prototxt").glob("*.prototxt") if not p.name.startswith(HEAVY))
SOLVERS = sorted(p for p in (ROOT / "solvers").glob("*.prototxt") if not p.name.startswith(HEAVY))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with synthetic MNIST LMDBs (digit-dependent blobs, 10 classes) and prototxt/."""
    folder = tmp_path_factory.mktemp("examples")
    rng = np.random.default_rng(0)
    for split, count in (("train", 300), ("test", 200)):
        labels = np.arange(count) % 10
        images = rng.integers(0, 60, (count, 1, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, 0, 2 * label:2 * label + 8, 4:24] += 150
        write_lmdb(folder / "data" / "mnist" / f"mnist_{split}_lmdb", datums(images, labels))
    make_omniglot(folder / "data")
    (folder / "prototxt").symlink_to(ROOT / "prototxt")
    return folder


def make_omniglot(data):
    """data/omniglot{,105}/{train,val}: synthetic Omniglot sets as `layerforge data omniglot` builds them."""
    zips = data / "zips"
    zips.mkdir(parents=True)
    make_zip(zips / "background.zip", "images_background", {"Greek": 4, "Korean": 3}, drawers=4)
    make_zip(zips / "held_out.zip", "images_background_small1", {"Balinese": 3, "Early_Aramaic": 2}, drawers=4)
    for name, size in (("omniglot", (56, 56)), ("omniglot105", None)):
        build_omniglot_lmdb(data / name / "train", zips / "background.zip", size)
        build_omniglot_lmdb(data / name / "val", zips / "held_out.zip", size)


@pytest.fixture
def in_workdir(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    return workdir


def test_the_examples_are_there():
    assert {p.name for p in NETS} >= {"mnist_siamese_train_test.prototxt", "mnist_siamese_deploy.prototxt",
                                      "bvlc_mnist_siamese_train_test.prototxt", "lenet_train_test.prototxt"}
    assert {p.name for p in SOLVERS} >= {"mnist_siamese_solver.prototxt", "mnist_siamese_adam_solver.prototxt",
                                         "lenet_solver.prototxt"}


def _phases(path):
    """Deploy nets have no TRAIN phase; nets with RUN rules must also build for deployment."""
    text = path.read_text()
    phases = ["TEST", "RUN"] if "deploy" in path.name else ["TRAIN", "TEST"]
    return phases + ["RUN"] if "phase: RUN" in text and "RUN" not in phases else phases


@pytest.mark.parametrize("path", NETS, ids=lambda p: p.name)
def test_net_builds_and_runs_in_each_phase(path, in_workdir):
    for phase in _phases(path):
        net = Net(path, phase)
        outputs = net.forward()
        assert outputs, f"{path.name} in {phase} has no outputs"
        for name, value in outputs.items():
            assert np.all(np.isfinite(value)), f"{path.name} {phase}: output {name} is not finite"
        if phase == "TRAIN":
            net.backward()
            assert any(np.any(b.diff != 0) for b in net.learnable_params)


def test_siamese_twins_share_every_parameter(in_workdir):
    net = Net(ROOT / "prototxt" / "mnist_siamese_train_test.prototxt", pb.TRAIN)
    for name in ("conv1", "conv2", "ip1", "ip2", "feat"):
        assert net.params[name][0] is net.params[name + "_p"][0]
        assert net.params[name][1] is net.params[name + "_p"][1]
    assert len(net.learnable_params) == 10


@pytest.mark.parametrize("model", ["mnist_siamese_train_test.prototxt", "mnist_triplet_train_test.prototxt"])
def test_deploy_net_reads_the_train_nets_centroids(model, in_workdir, tmp_path):
    train = Net(ROOT / "prototxt" / model, pb.TRAIN)
    for _ in range(3):
        train.forward()
    feat = train.params["feat"][0].data
    feat[...] = np.arange(feat.size).reshape(feat.shape)  # not what a fresh deploy net would draw
    weights = tmp_path / "w.caffemodel"
    train.save(weights)
    deploy = Net(ROOT / "prototxt" / "mnist_siamese_deploy.prototxt", pb.RUN, weights=weights)
    centroids = train.params["decode1"][0].data
    np.testing.assert_array_equal(deploy.params["decode1"][0].data, centroids)
    np.testing.assert_array_equal(deploy.params["feat"][0].data, feat)
    image = np.zeros((1, 1, 28, 28), np.float32)
    distances = deploy.forward(data=image)["decode1"]
    assert distances.shape == (1, centroids.shape[0])


@pytest.mark.parametrize("path", SOLVERS, ids=lambda p: p.name)
def test_solver_parses_builds_and_steps(path, in_workdir):
    param = io.read_solver(path)
    param.snapshot_prefix = str(in_workdir / "runs" / path.stem)
    solver = get_solver(param)
    before = [b.data.copy() for b in solver.net.learnable_params]
    solver.step(2)
    assert solver.iter == 2 and solver.test_nets
    assert any(not np.array_equal(b.data, a) for b, a in zip(solver.net.learnable_params, before))
    assert (ROOT / io.read_solver(path).net).is_file()  # nets are named from the repository root
