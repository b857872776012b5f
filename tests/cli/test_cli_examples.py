"""`layerforge examples DIR`, and relative paths in solvers and nets found beside their file."""
import filecmp
import os
from pathlib import Path

import numpy as np

from layerforge import get_solver, io
from layerforge.cli import main
from layerforge.data.store import datums, write_lmdb
from layerforge.net import Net
from layerforge.tools.examples import example_files

ROOT = Path(__file__).resolve().parents[2]


def test_examples_copies_the_shipped_nets_and_solvers(tmp_path, capsys):
    shipped = sorted(example_files())
    assert shipped == sorted(f"{folder}/{p.name}" for folder in ("prototxt", "solvers")
                             for p in (ROOT / folder).glob("*.prototxt"))
    assert main(["examples", str(tmp_path / "ex")]) == 0
    assert f"Copied {len(shipped)} files" in capsys.readouterr().out
    for name in shipped:
        assert filecmp.cmp(tmp_path / "ex" / name, ROOT / name, shallow=False)
    (tmp_path / "ex" / shipped[0]).write_text("mine")
    assert main(["examples", str(tmp_path / "ex")]) == 2
    err = capsys.readouterr().err
    assert f"{shipped[0]}" in err and "pass --force" in err
    assert (tmp_path / "ex" / shipped[0]).read_text() == "mine"
    assert main(["examples", str(tmp_path / "ex"), "--force"]) == 0
    assert filecmp.cmp(tmp_path / "ex" / shipped[0], ROOT / shipped[0], shallow=False)


def test_find_beside(tmp_path, monkeypatch):
    (tmp_path / "solvers").mkdir()
    (tmp_path / "prototxt").mkdir()
    (tmp_path / "prototxt" / "n.prototxt").write_text("")
    (tmp_path / "solvers" / "near.prototxt").write_text("")
    monkeypatch.chdir(tmp_path / "prototxt")
    folder = str(tmp_path / "solvers")
    assert io.find_beside("n.prototxt", folder) == "n.prototxt"                     # working directory first
    assert io.find_beside("near.prototxt", folder) == os.path.join(folder, "near.prototxt")
    assert io.find_beside("prototxt/n.prototxt", folder) == str(tmp_path / "prototxt" / "n.prototxt")
    assert io.find_beside("nowhere.prototxt", folder) == "nowhere.prototxt"
    assert io.find_beside("/abs/x", folder) == "/abs/x"


def test_copied_examples_run_from_another_folder(tmp_path, monkeypatch, capsys):
    ex = tmp_path / "ex"
    assert main(["examples", str(ex)]) == 0
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        images = rng.integers(0, 256, (20, 1, 28, 28), dtype=np.uint8)
        write_lmdb(ex / "data" / "mnist" / f"mnist_{split}_lmdb", datums(images, np.arange(20) % 10))
    (ex / "runs").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    param = io.read_solver(ex / "solvers" / "lenet_solver.prototxt")
    assert param.net == str(ex / "prototxt" / "lenet_train_test.prototxt")
    assert param.snapshot_prefix == str(ex / "runs" / "lenet" / "lenet")
    net = Net(param.net, "TRAIN")
    assert net.layers["mnist"].param.data_param.source == str(ex / "data" / "mnist" / "mnist_train_lmdb")
    solver = get_solver(ex / "solvers" / "lenet_solver.prototxt")   # builds the train and test nets
    assert solver.snapshot_prefix == str(ex / "runs" / "lenet" / "lenet")
    monkeypatch.chdir(ex)                                            # as written, from DIR itself
    assert io.read_solver("solvers/lenet_solver.prototxt").snapshot_prefix == "runs/lenet/lenet"
