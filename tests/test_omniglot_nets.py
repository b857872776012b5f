"""The Omniglot nets of prototxt/: Koch et al.'s verification net builds, trains a few
iterations at a small batch and scores pairs in RUN; the practical recipe's deploy net reads
the trained encoder's weights and feeds `layerforge oneshot`."""
import pathlib

import numpy as np
import pytest

from layerforge import get_solver, io
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb
from layerforge.tools.timing import time_net
from tests.test_examples import make_omniglot

ROOT = pathlib.Path(__file__).resolve().parents[1]
KOCH = ROOT / "prototxt" / "omniglot_koch_train_test.prototxt"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("omniglot")
    make_omniglot(folder / "data")
    return folder


def koch_at_batch(batch, hidden=4096):
    """The Koch net with `batch` pairs per Data batch and `hidden` units in fc1 (4096 in the file)."""
    param = io.read_net(KOCH)
    for layer in param.layer:
        if layer.type == "Data":
            layer.data_param.batch_size = batch
        elif layer.name == "fc1":
            layer.inner_product_param.num_output = hidden
        elif layer.name == "repair":
            layer.reshape_param.shape.dim[1] = 2 * hidden
        elif layer.name == "slice_pair":
            layer.slice_param.slice_point[0] = hidden
    return param


def test_koch_net_layout():
    net = Net(koch_at_batch(1), pb.RUN)
    assert net.inputs == ["data", "data_p"] and net.outputs == ["score"]
    types = [entry.layer.type_name for entry in net.entries]
    assert types.count("Convolution") == 4 and types.count("Pooling") == 3
    shapes = {name: net.params[name][0].shape for name in ("conv1", "conv2", "conv3", "conv4", "fc1", "score")}
    assert shapes == {"conv1": (64, 1, 10, 10), "conv2": (128, 64, 7, 7), "conv3": (128, 128, 4, 4),
                      "conv4": (256, 128, 4, 4), "fc1": (4096, 9216), "score": (1, 4096)}
    eltwise = net.layers["difference"].param.eltwise_param
    assert list(eltwise.coeff) == [1, -1]


def test_koch_net_trains_a_few_iterations_at_a_small_batch(workdir, monkeypatch):
    """2 pairs per batch and 64 units in fc1 (its 38M weights at 4096 make every build slow)."""
    monkeypatch.chdir(workdir)
    param = io.read_solver(ROOT / "solvers" / "omniglot_koch_solver.prototxt")
    param.ClearField("net")
    param.net_param.CopyFrom(koch_at_batch(2, hidden=64))
    param.snapshot_prefix = str(workdir / "runs" / "koch")
    solver = get_solver(param)
    before = {name: [b.data.copy() for b in blobs] for name, blobs in solver.net.params.items()}
    solver.step(2)
    assert np.isfinite(solver.net.loss) and solver.net.loss > 0
    for name, blobs in solver.net.params.items():
        assert not np.array_equal(blobs[0].data, before[name][0]), f"{name} did not train"
    weights = workdir / "koch.caffemodel"
    solver.net.save(weights)
    run = Net(koch_at_batch(1, hidden=64), pb.RUN, weights=weights)
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 3, 1, 105, 105), dtype=np.float32)
    same = run.forward(data=a, data_p=a)["score"]
    assert same.shape == (3, 1)
    # |h1 - h2| = 0 for identical images: the score is the FC's bias for every pair.
    np.testing.assert_allclose(same[:, 0], run.params["score"][1].data[0], atol=1e-5)
    assert np.all(np.abs(run.forward(data=a, data_p=b)["score"] - same) > 1e-4)
    report = time_net(solver.net, iterations=1)
    assert report.forward_ms > 0 and report.backward_ms > 0


@pytest.mark.parametrize("model", ["omniglot_siamese_train_test.prototxt", "omniglot_triplet_train_test.prototxt"])
def test_siamese_deploy_reads_the_trained_encoder(model, workdir, monkeypatch, tmp_path):
    monkeypatch.chdir(workdir)
    train = Net(ROOT / "prototxt" / model, pb.TRAIN)
    train.forward()
    train.backward()
    weights = tmp_path / "w.caffemodel"
    train.save(weights)
    deploy = Net(ROOT / "prototxt" / "omniglot_siamese_deploy.prototxt", pb.RUN, weights=weights)
    assert set(deploy.params) < set(train.params)
    for name, blobs in deploy.params.items():
        for mine, trained in zip(blobs, train.params[name]):
            np.testing.assert_array_equal(mine.data, trained.data)
    # The TEST net's encoder on the first pair's images = the deploy net on them.
    test = Net(ROOT / "prototxt" / model, pb.TEST, weights=weights)
    test.forward()
    feat = deploy.forward(data=test.blobs["data"].data[:2])["feat"]
    np.testing.assert_allclose(feat, test.blobs["feat"].data[:2], rtol=1e-4, atol=1e-5)
