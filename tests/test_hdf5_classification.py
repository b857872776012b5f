"""Caffe's HDF5 classification example, as a Caffe user writes it: the net in
tests/configs/bvlc_hdf5_classification_train_val.prototxt trains from .h5 files the test
writes at the relative paths the net names, and its HDF5Output layer writes the scores."""
import pathlib

import h5py
import numpy as np

from layerforge import get_solver, io
from layerforge.proto import layerforge_pb2 as pb

NET = pathlib.Path(__file__).parent / "configs" / "bvlc_hdf5_classification_train_val.prototxt"


def write_split(folder, name, count, rng):
    """Two Gaussian classes in 4-D, stored as Caffe's example stores them (data, label)."""
    label = rng.integers(0, 2, count)
    data = rng.normal(size=(count, 4)) + np.where(label[:, None] == 1, 1.5, -1.5)
    path = folder / f"{name}.h5"
    with h5py.File(path, "w") as handle:
        handle["data"], handle["label"] = data.astype(np.float32), label.astype(np.float32)
    (folder / f"{name}.txt").write_text(f"{path}\n")


def test_hdf5_classification_net_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "examples" / "hdf5_classification" / "data"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_split(folder, "train", 200, rng)
    write_split(folder, "test", 50, rng)
    solver_text = (f'net: "{NET}" base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" max_iter: 40 '
                   f'test_iter: 5 test_interval: 1000 test_initialization: false display: 0 '
                   f'snapshot_after_train: false random_seed: 1 snapshot_prefix: "{tmp_path / "snap"}"')
    solver = get_solver(io.parse_text(solver_text, pb.SolverParameter()))
    solver.step(1)
    first = float(solver.net.loss)
    solver.step(39)
    assert float(solver.net.loss) < 0.5 * first
    outputs = solver.test(0)
    assert outputs["accuracy"] > 0.9
    with h5py.File(tmp_path / "examples" / "hdf5_classification" / "output.h5", "r") as handle:
        scores, labels = handle["data"][()], handle["label"][()]
    assert scores.shape == (50, 2) and labels.shape == (50,)
    with h5py.File(folder / "test.h5", "r") as handle:
        np.testing.assert_array_equal(labels, handle["label"][()])
    assert np.mean(scores.argmax(axis=1) == labels) > 0.9
