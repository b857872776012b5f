"""LMDB and LevelDB stores: Datum round trip, atomic writes, size checks, image-folder builder."""
import io

import numpy as np
import pytest
from PIL import Image

from layerforge.cli import build_parser
from layerforge.data import DatasetError, read_db, read_leveldb, read_lmdb, write_db, write_leveldb, write_lmdb
from layerforge.data.store import build_image_lmdb, count_records, datums
from layerforge.proto import layerforge_pb2 as pb


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("backend", ["lmdb", "leveldb"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 28, 28), (3, 5, 7)])
def test_round_trip(tmp_path, shape, backend):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1013,) + shape, dtype=np.uint8)   # > 1000: several write batches
    labels = rng.integers(0, 10, 1013)
    path = write_db(tmp_path / "db", datums(images, labels), backend)
    stored_images, stored_labels = read_db(path, backend)
    np.testing.assert_array_equal(stored_images, images)
    np.testing.assert_array_equal(stored_labels, labels)
    assert count_records(path, backend) == 1013
    assert leftovers(tmp_path) == []


def test_leveldb_is_a_real_leveldb(tmp_path):
    import plyvel
    path = write_leveldb(tmp_path / "db", datums(np.arange(8, dtype=np.uint8).reshape(2, 1, 2, 2), [4, 5]))
    with plyvel.DB(str(path)) as db:
        assert [key for key, _ in db] == [b"00000000", b"00000001"]
        assert pb.Datum.FromString(db.get(b"00000001")).label == 5


def test_wrong_backend_says_which_it_is(tmp_path):
    records = list(datums(np.zeros((1, 1, 2, 2), np.uint8), [0]))
    with pytest.raises(DatasetError, match=r"l: no LevelDB there .*\(it is an LMDB: set backend: LMDB\)"):
        read_leveldb(write_lmdb(tmp_path / "l", records))
    with pytest.raises(DatasetError, match=r"v: no LMDB there .*\(it is a LevelDB: set backend: LEVELDB\)"):
        read_lmdb(write_leveldb(tmp_path / "v", records))
    with pytest.raises(DatasetError, match="holds no records"):
        read_leveldb(write_leveldb(tmp_path / "empty", []))
    assert count_records(tmp_path / "l", "leveldb") is None and count_records(tmp_path / "v") is None


def test_failed_leveldb_write_leaves_nothing(tmp_path):
    def records():
        yield from datums(np.zeros((2500, 1, 2, 2), np.uint8), np.zeros(2500))
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_leveldb(tmp_path / "db", records())
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path):
    def records():
        yield from datums(np.zeros((2500, 1, 2, 2), np.uint8), np.zeros(2500))
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_lmdb(tmp_path / "db", records())
    assert list(tmp_path.iterdir()) == []
    assert count_records(tmp_path / "db") is None


def test_failed_rebuild_keeps_old_and_success_replaces(tmp_path):
    path = write_lmdb(tmp_path / "db", datums(np.ones((3, 1, 2, 2), np.uint8), [1, 2, 3]))

    def broken():
        yield b"00000000", b"x"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_lmdb(path, broken())
    np.testing.assert_array_equal(read_lmdb(path)[1], [1, 2, 3])
    write_lmdb(path, datums(np.ones((2, 1, 2, 2), np.uint8), [7, 8]))
    np.testing.assert_array_equal(read_lmdb(path)[1], [7, 8])
    assert leftovers(tmp_path) == []


def datum_record(key, **fields):
    return key, pb.Datum(**fields).SerializeToString()


def test_wrong_image_size_names_source_and_key(tmp_path):
    records = [datum_record(b"00000000", channels=1, height=2, width=2, data=bytes(4)),
               datum_record(b"00000001", channels=1, height=3, width=3, data=bytes(9))]
    path = write_lmdb(tmp_path / "db", records)
    with pytest.raises(DatasetError, match=r"db: record 00000001 is a 1x3x3 uint8 image but record "
                                           r"00000000 is 1x2x2"):
        read_lmdb(path)


def test_bad_records_and_missing_source(tmp_path):
    path = write_lmdb(tmp_path / "short", [datum_record(b"k", channels=1, height=2, width=2, data=bytes(3))])
    with pytest.raises(DatasetError, match="short: record k holds 3 values but says it is 1x2x2"):
        read_lmdb(path)
    with pytest.raises(DatasetError, match="nowhere: no LMDB there .*layerforge data mnist"):
        read_lmdb(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="holds no records"):
        read_lmdb(write_lmdb(tmp_path / "empty", []))


def test_float_and_encoded_records(tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(1, 2, 3) / 4
    path = write_lmdb(tmp_path / "float", [datum_record(b"0", channels=1, height=2, width=3,
                                                        float_data=values.ravel(), label=4)])
    images, labels = read_lmdb(path)
    np.testing.assert_array_equal(images[0], values)
    assert images.dtype == np.float32 and labels[0] == 4
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    path = write_lmdb(tmp_path / "png", [datum_record(b"0", encoded=True, data=png.getvalue(), label=2)])
    np.testing.assert_array_equal(read_lmdb(path)[0][0], rgb.transpose(2, 0, 1))


@pytest.fixture
def image_root(tmp_path):
    """ROOT/cat (2 PNG), ROOT/dog (1 PNG + 1 JPEG) and a stray text file; all 6×4 RGB."""
    rng = np.random.default_rng(0)
    root = tmp_path / "root"
    pictures = {}
    for name in ("dog/b.png", "dog/a.jpg", "cat/z.png", "cat/y.PNG"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / name, format="JPEG" if name.endswith("jpg") else "PNG")
        pictures[name] = np.asarray(Image.open(root / name).convert("RGB"))
    (root / "cat" / "notes.txt").write_text("not an image")
    return root, pictures


def test_image_folder(image_root, tmp_path):
    root, pictures = image_root
    path = build_image_lmdb(root, tmp_path / "out")
    images, labels = read_lmdb(path)
    assert (tmp_path / "out" / "labels.txt").read_text() == "cat\ndog\n"
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    order = ["cat/y.PNG", "cat/z.png", "dog/a.jpg", "dog/b.png"]
    np.testing.assert_array_equal(images, np.stack([pictures[n].transpose(2, 0, 1) for n in order]))


def test_image_folder_gray_resize(image_root, tmp_path):
    root, pictures = image_root
    images, labels = read_lmdb(build_image_lmdb(root, tmp_path / "out", resize=(3, 5), gray=True))
    expected = np.asarray(Image.fromarray(pictures["cat/y.PNG"]).convert("L").resize((5, 3), Image.BILINEAR))
    assert images.shape == (4, 1, 3, 5)
    np.testing.assert_array_equal(images[0, 0], expected)


def test_image_folder_errors(image_root, tmp_path):
    root, _ = image_root
    Image.new("RGB", (9, 9)).save(root / "dog" / "c.png")
    with pytest.raises(DatasetError, match=r"dog/c.png is 9x9 but .*cat/y.PNG is 6x4; pass --resize HxW"):
        build_image_lmdb(root, tmp_path / "out")
    assert not (tmp_path / "out").exists() or leftovers(tmp_path / "out") == []
    (root / "dog" / "c.png").write_bytes(b"broken")
    with pytest.raises(DatasetError, match="c.png: cannot read the image"):
        build_image_lmdb(root, tmp_path / "out", resize=(4, 4))
    with pytest.raises(DatasetError, match="no PNG or JPEG images"):
        build_image_lmdb(tmp_path / "empty", tmp_path / "out")


def test_images_command(image_root, tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["data", "images", "--out", str(tmp_path / "out"), str(image_root[0]),
                              "--resize", "8x2", "--gray", "--shuffle"])
    assert args.func(args) == 0
    images, labels = read_lmdb(tmp_path / "out" / "images_lmdb")
    assert images.shape == (4, 1, 8, 2) and sorted(labels) == [0, 0, 1, 1]
    assert "images_lmdb" in capsys.readouterr().out
    args = parser.parse_args(["data", "images", "--out", str(tmp_path / "out"), str(image_root[0]),
                              "--resize", "8x2", "--backend", "leveldb"])
    assert args.func(args) == 0
    images, labels = read_leveldb(tmp_path / "out" / "images_leveldb")
    assert images.shape == (4, 3, 8, 2) and list(labels) == [0, 0, 1, 1]
    assert "images_leveldb" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "images", "--out", "x", "root", "--resize", "8by2"])
    assert "invalid HxW size value" in capsys.readouterr().err
