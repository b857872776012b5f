"""Real MNIST training on shortened schedules (marked slow; skipped without LAYERFORGE_MNIST).

Floors, measured on a 2-core machine and recorded in README.md:
- Siamese net (MyCaffe tutorial), 2000 SGD iterations: nearest-centroid accuracy on the
  10 000 test digits >= 0.93 (measured 0.951; the full 8000-iteration `make demo` 0.9716).
- LeNet, 2000 iterations: test accuracy >= 0.98 (measured 0.988; 10 000 iterations 0.9908).
"""
import os
import pathlib

import numpy as np
import pytest

from layerforge import Net, get_solver, io
from layerforge.data.idx import build_mnist_lmdbs
from layerforge.proto import layerforge_pb2 as pb

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("LAYERFORGE_MNIST"),
                       reason="set LAYERFORGE_MNIST to the folder of the four MNIST IDX .gz files"),
]


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    """A working folder with data/mnist LMDBs and the repository's prototxt/, as `make demo` has."""
    folder = tmp_path_factory.mktemp("mnist")
    build_mnist_lmdbs(folder / "data" / "mnist", os.environ["LAYERFORGE_MNIST"])
    (folder / "prototxt").symlink_to(ROOT / "prototxt")
    return folder


def train(solver_name, root, iterations):
    param = io.read_solver(ROOT / "solvers" / solver_name)
    param.max_iter = iterations
    param.test_interval = 0
    param.ClearField("test_iter")
    param.snapshot = 0
    param.snapshot_prefix = str(root / "runs" / pathlib.Path(solver_name).stem)
    solver = get_solver(param)
    solver.solve()
    weights = root / f"{pathlib.Path(solver_name).stem}.caffemodel"
    solver.net.save(weights)
    return weights


def mean_accuracy(model, weights, batches):
    net = Net(ROOT / "prototxt" / model, pb.TEST, weights=weights)
    return float(np.mean([net.forward()["accuracy"] for _ in range(batches)]))


def test_siamese_nearest_centroid_accuracy(mnist_root, monkeypatch):
    monkeypatch.chdir(mnist_root)
    weights = train("mnist_siamese_solver.prototxt", mnist_root, 2000)
    accuracy = mean_accuracy("mnist_siamese_deploy.prototxt", weights, 100)  # 100 x 100 test digits
    assert accuracy >= 0.93


def test_lenet_accuracy(mnist_root, monkeypatch):
    monkeypatch.chdir(mnist_root)
    weights = train("lenet_solver.prototxt", mnist_root, 2000)
    net = io.read_net(ROOT / "prototxt" / "lenet_train_test.prototxt")
    assert any(l.type == "Accuracy" for l in net.layer)
    assert mean_accuracy("lenet_train_test.prototxt", weights, 100) >= 0.98
