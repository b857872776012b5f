"""Synthetic stand-ins for MNIST: LMDBs of digit-like classes and the MNIST Siamese solver on them."""
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from layerforge import io
from layerforge.data.store import datums, write_lmdb
from layerforge.proto import layerforge_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]


def siamese_lmdbs(folder):
    rng = np.random.default_rng(0)
    paths = {}
    for name, count in (("train", 1280), ("test", 256)):
        labels = rng.integers(0, 10, count)
        images = (rng.integers(0, 60, (count, 1, 28, 28)) + 18 * labels[:, None, None, None]).astype(np.uint8)
        paths[name] = write_lmdb(folder / f"{name}_lmdb", datums(images, labels))
    return paths


def siamese_solver(folder, lmdbs, pairs, name, max_iter=20, snapshot=0):
    """The MNIST Siamese solver and net on synthetic data, `pairs` per batch (per rank)."""
    net = io.read_net(ROOT / "prototxt" / "mnist_siamese_train_test.prototxt")
    for layer in net.layer:
        if layer.type == "Data":
            phase = "train" if layer.include[0].phase == pb.TRAIN else "test"
            layer.data_param.source = str(lmdbs[phase])
            layer.data_param.batch_size = pairs
    solver = io.read_solver(ROOT / "solvers" / "mnist_siamese_solver.prototxt")
    solver.ClearField("net")
    solver.net_param.CopyFrom(net)
    solver.max_iter, solver.test_interval, solver.display = max_iter, 10, 5
    del solver.test_iter[:]
    solver.test_iter.append(4)
    solver.snapshot = snapshot
    solver.snapshot_prefix = str(folder / name / "siamese")
    path = folder / f"{name}_solver.prototxt"
    io.write_text(solver, path)
    return path


def run_until_logged(command, text, signum, timeout=600):
    """Start `command`, send it `signum` once `text` appears in its output; (status, output)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output, deadline = [], time.monotonic() + timeout
    for line in process.stdout:
        output.append(line)
        if text in line:
            process.send_signal(signum)
            break
        if time.monotonic() > deadline:
            process.kill()
            break
    output.append(process.communicate(timeout=timeout)[0])
    return process.returncode, "".join(output)
