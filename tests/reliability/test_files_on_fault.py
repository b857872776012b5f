"""What faults leave on disk: temporary files of killed processes are removed by the next
write to the same place; a full disk names the file and keeps the previous snapshot; a
flipped byte in a snapshot written by layerforge is caught by its .sha256 checksum."""
import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from layerforge import Net, io
from layerforge.data.store import datums, read_lmdb, write_lmdb
from layerforge.io import ConfigError
from layerforge.proto import layerforge_pb2 as pb
from layerforge.solvers import get_solver
from tests.solver.helpers import linear_net, solver_param
from tests.synthetic import ROOT


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    return child.pid


def _killed_during(code, tmp_path):
    """Run `code` in a child that dies (os._exit, as under SIGKILL) at the final rename."""
    done = subprocess.run([sys.executable, "-c", "import os\nos.replace = lambda *a: os._exit(9)\n" + code],
                          cwd=ROOT, timeout=120, capture_output=True, text=True)
    assert done.returncode == 9, done.stderr


def test_killed_write_leaves_a_temporary_the_next_write_removes(tmp_path):
    target = tmp_path / "w.caffemodel"
    _killed_during(f"from layerforge import io\nio.write_atomic({str(target)!r}, b'x' * 1000)", tmp_path)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".tmp-"), left
    alive = tmp_path / f".tmp-{os.getppid()}-running"     # a live process's temporary stays
    alive.write_bytes(b"")
    io.write_atomic(target, b"good")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "w.caffemodel"])
    assert target.read_bytes() == b"good"


def test_killed_lmdb_build_leaves_a_folder_the_next_build_removes(tmp_path):
    images, labels = np.zeros((3, 1, 2, 2), np.uint8), np.arange(3)
    target = tmp_path / "mnist_train_lmdb"
    stale = tmp_path / f".mnist_train_lmdb.tmp-{_dead_pid()}"
    stale.mkdir()
    (stale / "data.mdb").write_bytes(b"\0" * 4096)
    write_lmdb(target, datums(images, labels))
    assert [p.name for p in tmp_path.iterdir()] == ["mnist_train_lmdb"]
    assert list(read_lmdb(target)[1]) == [0, 1, 2]


def _disk_full(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "w.caffemodel"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(ConfigError, match=rf"{target}: cannot write 3 bytes: No space left on device"):
        io.write_atomic(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["w.caffemodel"] and target.read_bytes() == b"old"


def _solver(tmp_path, max_iter=3):
    text = (f'base_lr: 0.01 max_iter: {max_iter} snapshot: 2 snapshot_after_train: true '
            f'snapshot_prefix: "{tmp_path / "snap"}"')
    return get_solver(solver_param(linear_net(), text))


def test_disk_full_at_the_final_snapshot_keeps_the_previous_one(tmp_path, monkeypatch):
    solver = _solver(tmp_path)

    def fill_disk_after_iteration_2(event):
        if event["event"] == "iteration" and event["iter"] == 3:
            monkeypatch.setattr(os, "fsync", _disk_full)

    solver.callbacks.append(fill_disk_after_iteration_2)
    kept = f"{tmp_path / 'snap'}_iter_2"
    with pytest.raises(ConfigError, match=rf"Iteration 3: the snapshot failed: {tmp_path / 'snap'}_iter_3\.\w+: "
                                          rf"cannot write .*No space left on device; the previous snapshot "
                                          rf"\(iteration 2\) is kept: {kept}.caffemodel and {kept}.solverstate"):
        solver.solve()
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".sha256")) == [
        "snap_iter_2.caffemodel", "snap_iter_2.solverstate"]
    _solver(tmp_path).restore(kept + ".solverstate")


def test_a_flipped_byte_is_caught_by_the_checksum(tmp_path):
    solver = _solver(tmp_path, max_iter=2)
    solver.solve()
    for suffix in (".caffemodel", ".solverstate"):
        path = tmp_path / f"snap_iter_2{suffix}"
        assert (tmp_path / f"snap_iter_2{suffix}.sha256").read_text().endswith(f"  {path.name}\n")
        payload = bytearray(path.read_bytes())
        payload[len(payload) // 2] ^= 0x01
        path.write_bytes(bytes(payload))
        with pytest.raises(ConfigError, match=rf"^{path}: corrupt: its SHA-256 does not match {path}.sha256"):
            io.read_binary(path, pb.SolverState() if suffix == ".solverstate" else pb.NetParameter())
    with pytest.raises(ConfigError, match="corrupt"):
        _solver(tmp_path).restore(tmp_path / "snap_iter_2.solverstate")


def test_files_without_a_checksum_load_as_before(tmp_path):
    net = Net(solver_param(linear_net(), "").net_param)
    net.save(tmp_path / "w.caffemodel")
    os.unlink(tmp_path / "w.caffemodel.sha256")      # as Caffe writes it
    Net(solver_param(linear_net(), "").net_param, weights=tmp_path / "w.caffemodel")


def test_drawings_and_checksums_get_the_umask_mode(tmp_path):
    (tmp_path / "n.prototxt").write_text(
        'name: "n"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "y" inner_product_param { num_output: 2 } }\n')
    code = ("import os, sys; os.umask(0o022); from layerforge import Net; from layerforge.cli import main; "
            f"main(['draw', 'n.prototxt', 'n.dot']); Net('n.prototxt').save('w.caffemodel')")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    for name in ("n.dot", "w.caffemodel", "w.caffemodel.sha256"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o644, name
