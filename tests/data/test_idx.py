"""IDX reading, md5 checks, MNIST download fallback and MNIST -> LMDB conversion (on small fake files)."""
import gzip
import hashlib

import lmdb
import numpy as np
import pytest

from layerforge.cli import build_parser, main
from layerforge.data import DatasetError, build_mnist_lmdbs, idx, read_db, read_idx, read_lmdb
from layerforge.proto import layerforge_pb2 as pb


def idx_bytes(array, magic_dtype=0x08):
    header = bytes([0, 0, magic_dtype, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Four small IDX .gz files (30 train, 12 test images) with idx.MNIST_FILES pointing at their md5."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()
    arrays = {}
    files = dict(idx.MNIST_FILES)
    splits = {"train": idx.SPLITS["train"][:2] + (30,), "test": idx.SPLITS["test"][:2] + (12,)}
    for split, (images_name, labels_name, count) in splits.items():
        arrays[split] = (rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), np.arange(count) % 10)
        for name, array in ((images_name, arrays[split][0]), (labels_name, arrays[split][1])):
            raw = idx_bytes(array)
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            gz_md5 = hashlib.md5((folder / f"{name}.gz").read_bytes()).hexdigest()
            files[name] = (gz_md5, hashlib.md5(raw).hexdigest(), files[name][2])
    monkeypatch.setattr(idx, "MNIST_FILES", files)
    monkeypatch.setattr(idx, "SPLITS", splits)
    monkeypatch.delenv("LAYERFORGE_MNIST", raising=False)
    return folder, arrays


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(5,), (3, 4, 2), (1, 28, 28)])
def test_read_idx_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / f"a{suffix}"
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if suffix else raw)
    np.testing.assert_array_equal(read_idx(path, 0x800 + len(shape)), array)


def test_read_idx_wrong_magic_names_file(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(4)))
    with pytest.raises(DatasetError, match=r"labels: wrong IDX magic number 0x00000801, expected 0x00000803"):
        read_idx(path, 0x803)
    path.write_bytes(b"GIF89a....")
    with pytest.raises(DatasetError, match="labels: not an IDX file"):
        read_idx(path)


def test_read_idx_truncated_and_corrupt(tmp_path):
    raw = idx_bytes(np.zeros((4, 28, 28)))
    path = tmp_path / "images"
    path.write_bytes(raw[:-10])
    with pytest.raises(DatasetError, match=r"images: IDX file is 3142 bytes, .* says 3152 \(truncated"):
        read_idx(path)
    gz = tmp_path / "images.gz"
    gz.write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(DatasetError, match="images.gz: cannot read IDX file"):
        read_idx(gz)
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="images.gz: cannot read IDX file"):
        read_idx(gz)


def test_md5_mismatch_names_file(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"abc")
    with pytest.raises(DatasetError, match=r"x.gz: md5 mismatch \(expected 0+, got 900150983cd24fb0"):
        idx.verify_md5(path, "0" * 32)


def test_build_mnist_lmdbs(fake_mnist, tmp_path):
    folder, arrays = fake_mnist
    train, test = build_mnist_lmdbs(tmp_path / "out", folder)
    assert (train.name, test.name) == ("mnist_train_lmdb", "mnist_test_lmdb")
    for path, (images, labels) in ((train, arrays["train"]), (test, arrays["test"])):
        stored_images, stored_labels = read_lmdb(path)
        np.testing.assert_array_equal(stored_images, images[:, None])
        np.testing.assert_array_equal(stored_labels, labels)
    with lmdb.open(str(train), readonly=True, lock=False) as env, env.begin() as txn:
        key, value = next(iter(txn.cursor()))
        datum = pb.Datum.FromString(value)
    assert key == b"00000000"
    assert (datum.channels, datum.height, datum.width, datum.label) == (1, 28, 28, 0)
    # Complete LMDBs are kept: a second call needs no IDX files at all.
    before = (train / "data.mdb").stat().st_mtime_ns
    assert build_mnist_lmdbs(tmp_path / "out", tmp_path / "nowhere") == (train, test)
    assert (train / "data.mdb").stat().st_mtime_ns == before


def test_build_mnist_lmdbs_from_environment(fake_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERFORGE_MNIST", str(fake_mnist[0]))
    train, test = build_mnist_lmdbs(tmp_path / "out")
    assert len(read_lmdb(test)[1]) == 12


def test_failed_rebuild_keeps_complete_lmdb_and_writes_nothing(fake_mnist, tmp_path):
    folder, arrays = fake_mnist
    out = tmp_path / "out"
    train, test = build_mnist_lmdbs(out, folder)
    train_bytes = (train / "data.mdb").read_bytes()
    import shutil
    shutil.rmtree(test)  # incomplete: the next call must rebuild it
    name = "t10k-images-idx3-ubyte.gz"
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[:-5])
    with pytest.raises(DatasetError, match=f"{name}: md5 mismatch"):
        build_mnist_lmdbs(out, folder)
    assert (train / "data.mdb").read_bytes() == train_bytes
    assert sorted(p.name for p in out.iterdir()) == ["mnist_train_lmdb"]


def test_missing_file_is_named(fake_mnist):
    folder, _ = fake_mnist
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="missing MNIST file train-labels-idx1-ubyte.gz"):
        idx.find_mnist_files(folder)


def test_download_from_mirrors(fake_mnist, tmp_path):
    folder, arrays = fake_mnist
    bad = (tmp_path / "no-such-mirror").as_uri()
    dest = idx.download_mnist(tmp_path / "raw", mirrors=(bad, folder.as_uri()))
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{n}.gz" for n in idx.MNIST_FILES)
    train, _ = build_mnist_lmdbs(tmp_path / "out", mirrors=(folder.as_uri(),))
    np.testing.assert_array_equal(read_lmdb(train)[1], arrays["train"][1])


def test_download_failure_says_what_to_do(fake_mnist, tmp_path):
    with pytest.raises(DatasetError, match=r"(?s)cannot download .*no-such-mirror.*--from DIR or LAYERFORGE_MNIST"):
        idx.download_mnist(tmp_path / "raw", mirrors=((tmp_path / "no-such-mirror").as_uri(),))
    assert not any((tmp_path / "raw").iterdir())


def parse(argv):
    return build_parser().parse_args(argv)


def test_mnist_command(fake_mnist, tmp_path, capsys):
    args = parse(["data", "mnist", "--out", str(tmp_path / "out"), "--from", str(fake_mnist[0])])
    assert args.func(args) == 0
    assert "mnist_train_lmdb" in capsys.readouterr().out
    (fake_mnist[0] / "train-labels-idx1-ubyte.gz").write_bytes(b"junk")
    status = main(["data", "mnist", "--out", str(tmp_path / "out2"), "--from", str(fake_mnist[0])])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("layerforge: error: ") and err.count("\n") == 1, err
    assert "train-labels-idx1-ubyte.gz: md5 mismatch" in err
    assert not (tmp_path / "out2").exists()


def test_mnist_command_leveldb(fake_mnist, tmp_path, capsys):
    args = parse(["data", "mnist", "--out", str(tmp_path / "out"), "--from", str(fake_mnist[0]),
                  "--backend", "leveldb"])
    assert args.func(args) == 0
    assert "mnist_train_leveldb" in capsys.readouterr().out
    for split, (images, labels) in fake_mnist[1].items():
        stored_images, stored_labels = read_db(tmp_path / "out" / f"mnist_{split}_leveldb", "leveldb")
        np.testing.assert_array_equal(stored_images, images[:, None])
        np.testing.assert_array_equal(stored_labels, labels)
    assert not (tmp_path / "out" / "mnist_train_lmdb").exists()
