"""Caffe's tools: convert_imageset (and `data images` on a list file), compute_image_mean,
extract_features."""
import numpy as np
import pytest
from PIL import Image

from layerforge.cli import main
from layerforge.data import read_lmdb
from layerforge.data.store import datums, write_lmdb
from layerforge.data.transform import load_mean_file
from layerforge.net import Net
from tests.cli import save_weights, write_net


@pytest.fixture
def listed(tmp_path):
    """Five RGB images of different sizes under root/, and a list file naming them with labels."""
    rng = np.random.default_rng(0)
    (tmp_path / "root" / "sub dir").mkdir(parents=True)
    lines, pixels = [], []
    for i in range(5):
        image = rng.integers(0, 256, (10 + i, 12, 3), dtype=np.uint8)
        name = f"sub dir/img {i}.png" if i % 2 else f"img{i}.png"
        Image.fromarray(image).save(tmp_path / "root" / name)
        lines.append(f"{name} {i % 3}")
        pixels.append(image)
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n\n")
    return tmp_path, pixels


def expected(image, height, width, gray):
    picture = Image.fromarray(image).convert("L" if gray else "RGB").resize((width, height), Image.BILINEAR)
    array = np.asarray(picture)
    return array[None] if gray else array.transpose(2, 0, 1)


@pytest.mark.parametrize("flags", [["--resize", "8x6"], ["-resize_height", "8", "-resize_width", "6"]])
def test_convert_imageset_in_list_order_with_labels(listed, capsys, flags):
    folder, pixels = listed
    assert main(["convert_imageset", str(folder / "root"), str(folder / "list.txt"), str(folder / "db"),
                 *flags, "-gray"]) == 0
    assert f"wrote {folder / 'db'}" in capsys.readouterr().out
    images, labels = read_lmdb(folder / "db")
    assert labels.tolist() == [0, 1, 2, 0, 1]
    np.testing.assert_array_equal(images, np.stack([expected(p, 8, 6, True) for p in pixels]))


def test_convert_imageset_encoded_and_shuffled(listed):
    folder, pixels = listed
    root, listing = str(folder / "root"), str(folder / "list.txt")
    assert main(["convert_imageset", root, listing, str(folder / "raw"), "--resize", "7x7"]) == 0
    assert main(["convert_imageset", root, listing, str(folder / "png"), "--resize", "7x7", "--encoded"]) == 0
    raw, png = read_lmdb(folder / "raw"), read_lmdb(folder / "png")
    np.testing.assert_array_equal(raw[0], png[0])                  # PNG is lossless, RGB both ways
    assert raw[0].shape == (5, 3, 7, 7)
    np.testing.assert_array_equal(raw[0][1], expected(pixels[1], 7, 7, False))
    assert main(["convert_imageset", root, listing, str(folder / "mixed"), "--resize", "7x7",
                 "--shuffle"]) == 0
    mixed = read_lmdb(folder / "mixed")
    order = np.random.default_rng(0).permutation(5)
    np.testing.assert_array_equal(mixed[0], raw[0][order])
    np.testing.assert_array_equal(mixed[1], raw[1][order])


def test_data_images_takes_a_list_file(listed, capsys):
    folder, pixels = listed
    assert main(["data", "images", str(folder / "list.txt"), "--root", str(folder / "root"),
                 "--out", str(folder / "out"), "--resize", "9x9"]) == 0
    assert capsys.readouterr().out == f"wrote {folder / 'out' / 'images_lmdb'}\n"
    images, labels = read_lmdb(folder / "out" / "images_lmdb")
    assert images.shape == (5, 3, 9, 9) and labels.tolist() == [0, 1, 2, 0, 1]


def test_bad_list_files_are_one_line_errors(listed, capsys):
    folder, _ = listed
    (folder / "bad.txt").write_text("img0.png 0\nimg2.png two\n")
    assert main(["convert_imageset", str(folder / "root"), str(folder / "bad.txt"), str(folder / "db")]) == 2
    err = capsys.readouterr().err
    assert "bad.txt:2: expected `path label` with an integer label, got 'img2.png two'" in err
    assert main(["convert_imageset", str(folder / "root"), str(folder / "list.txt"), str(folder / "db")]) == 2
    assert "pass --resize HxW" in capsys.readouterr().err        # sizes differ, no resize
    assert not (folder / "db").exists()


def test_compute_image_mean(tmp_path, capsys):
    images = np.random.default_rng(1).integers(0, 256, (7, 3, 4, 5), dtype=np.uint8)
    write_lmdb(tmp_path / "db", datums(images, range(7)))
    assert main(["compute_image_mean", str(tmp_path / "db"), str(tmp_path / "mean.binaryproto")]) == 0
    lines = capsys.readouterr().out.splitlines()
    mean = images.mean(axis=0)
    np.testing.assert_allclose(load_mean_file(tmp_path / "mean.binaryproto"), mean, rtol=1e-6)
    for channel in range(3):
        value = float(lines[channel].rsplit(" ", 1)[1])
        assert lines[channel].startswith(f"mean_value channel [{channel}]: ")
        assert value == pytest.approx(mean[channel].mean(), rel=1e-5)
    assert lines[3] == f"wrote {tmp_path / 'mean.binaryproto'} (mean of 7 images, 3x4x5)"


def test_extract_features_to_npz_and_databases(tmp_path, capsys):
    model, weights = write_net(tmp_path), save_weights(tmp_path)
    argv = ["extract_features", "--model", str(model), "--weights", str(weights), "--blobs", "ip1,ip2",
            "--iterations", "3"]
    assert main(argv + ["--out", str(tmp_path / "f.npz")]) == 0
    saved = np.load(tmp_path / "f.npz")
    net = Net(model, "TEST", weights=weights)
    want = {"ip1": [], "ip2": [], "label": []}
    for _ in range(3):
        net.forward()
        for name in want:
            want[name].append(net.blobs[name].data.copy())
    assert sorted(saved.files) == ["ip1", "ip2", "label"]
    for name, parts in want.items():
        np.testing.assert_array_equal(saved[name], np.concatenate(parts))
    assert main(argv + ["--out", f"{tmp_path / 'ip1_db'},{tmp_path / 'ip2_db'}"]) == 0
    values, labels = read_lmdb(tmp_path / "ip2_db")
    assert values.shape == (36, 3, 1, 1) and values.dtype == np.float32 and not labels.any()
    np.testing.assert_array_equal(values[:, :, 0, 0], saved["ip2"])
    capsys.readouterr()
    assert main(argv + ["--out", str(tmp_path / "one_db")]) == 2
    assert "--out names 1 databases for 2 blobs" in capsys.readouterr().err
