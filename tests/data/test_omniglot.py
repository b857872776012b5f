"""Omniglot zips -> Datum LMDB + labels.txt (synthetic zips always; the real ones with
LAYERFORGE_OMNIGLOT)."""
import os
import zipfile

import numpy as np
import pytest

from layerforge.data import DatasetError, read_lmdb
from layerforge.data.groups import class_groups, read_class_names
from layerforge.data.omniglot import build_omniglot_lmdb, load_omniglot, read_image
from tests.omniglot_zips import character_image, make_zip, png_bytes


@pytest.fixture
def zips(tmp_path):
    folder = tmp_path / "zips"
    folder.mkdir()
    make_zip(folder / "images_background_small1.zip", "images_background_small1", {"Greek": 3, "Korean": 2})
    make_zip(folder / "images_background_small2.zip", "images_background_small2", {"Greek": 3, "Tagalog": 2},
             first_seed=0)
    return folder


def test_read_image_inverts_and_resizes():
    white = character_image(7, 1)
    pixels = read_image(png_bytes(white))
    assert pixels.dtype == np.uint8 and pixels.shape == (105, 105)
    np.testing.assert_array_equal(pixels, np.where(white, 0, 255))
    small = read_image(png_bytes(white), (28, 35))
    assert small.shape == (28, 35)
    assert small.max() == 255 and small.min() == 0  # 15-pixel blocks keep full-ink cells


def test_build_lmdb_one_class_per_character_with_alphabets(tmp_path, zips):
    path, data = build_omniglot_lmdb(tmp_path / "out", zips, size=(28, 28))
    images, labels = read_lmdb(path)
    # Greek is in both zips and read once: 3 + 2 + 2 characters × 4 drawers.
    assert images.shape == (28, 1, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.repeat(np.arange(7), 4))
    np.testing.assert_array_equal(images, data.images)
    names = read_class_names(tmp_path / "out" / "labels.txt")
    assert names == {0: "Greek/character01", 1: "Greek/character02", 2: "Greek/character03",
                     3: "Korean/character01", 4: "Korean/character02",
                     5: "Tagalog/character01", 6: "Tagalog/character02"}
    np.testing.assert_array_equal(class_groups(str(path)), [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(data.drawers, np.tile(np.arange(1, 5), 7))
    expected = read_image(png_bytes(character_image(2, 3)), (28, 28))  # Greek character02, drawer 3
    np.testing.assert_array_equal(images[4 + 2, 0], expected)


def test_rotations_add_classes_of_the_same_alphabet(tmp_path, zips):
    path, data = build_omniglot_lmdb(tmp_path / "out", zips, size=(28, 28), rotations=4)
    plain = load_omniglot(zips, size=(28, 28))
    images, labels = read_lmdb(path)
    assert images.shape == (4 * 28, 1, 28, 28)
    np.testing.assert_array_equal(labels, np.concatenate([plain.labels + 7 * k for k in range(4)]))
    for k in range(4):   # rotation k holds every image turned by k quarter turns, counter-clockwise
        np.testing.assert_array_equal(images[28 * k:28 * (k + 1)], np.rot90(plain.images, k, axes=(2, 3)))
    names = read_class_names(tmp_path / "out" / "labels.txt")
    assert names[1] == "Greek/character02" and names[7 + 1] == "Greek/character02@90"
    assert names[14 + 6] == "Tagalog/character02@180" and names[21 + 3] == "Korean/character01@270"
    np.testing.assert_array_equal(class_groups(str(path)), np.tile([0, 0, 0, 1, 1, 2, 2], 4))
    half = load_omniglot(zips, size=(28, 28)).with_rotations(2)
    np.testing.assert_array_equal(half.images[28:], np.rot90(plain.images, 2, axes=(2, 3)))
    assert half.names[7] == "Greek/character01@180"
    with pytest.raises(DatasetError, match="rotations must be 1, 2 or 4, got 3"):
        plain.with_rotations(3)


def test_alphabet_selection_and_errors(tmp_path, zips, monkeypatch):
    data = load_omniglot(zips / "images_background_small2.zip", alphabets=["Tagalog"])
    assert data.names == ["Tagalog/character01", "Tagalog/character02"] and data.alphabets == ["Tagalog"] * 2
    with pytest.raises(DatasetError, match=r"no alphabet Latin \(alphabets there: Greek, Korean, Tagalog\)"):
        load_omniglot(zips, alphabets=["Latin"])
    make_zip(tmp_path / "odd.zip", "odd", {"Odd": 1})
    with zipfile.ZipFile(tmp_path / "odd.zip", "a") as archive:
        archive.writestr("odd/Odd/character01/0001_09.png", png_bytes(np.ones((50, 50), bool)))
    with pytest.raises(DatasetError, match="several sizes"):
        load_omniglot(tmp_path / "odd.zip")
    monkeypatch.delenv("LAYERFORGE_OMNIGLOT", raising=False)
    with pytest.raises(DatasetError, match="LAYERFORGE_OMNIGLOT"):
        load_omniglot()
    with pytest.raises(DatasetError, match="no Omniglot .zip files"):
        load_omniglot(tmp_path / "nothing")


@pytest.mark.skipif(not os.environ.get("LAYERFORGE_OMNIGLOT"),
                    reason="set LAYERFORGE_OMNIGLOT to the folder of images_background_small{1,2}.zip")
def test_real_background_sets():
    data = load_omniglot(size=(28, 28))
    assert len(data.names) == 242 and data.images.shape == (4840, 1, 28, 28)
    assert np.bincount(data.labels).tolist() == [20] * 242
    counts = {a: data.alphabets.count(a) for a in set(data.alphabets)}
    assert counts == {"Balinese": 24, "Early_Aramaic": 22, "Greek": 24, "Korean": 40, "Latin": 26,
                      "Japanese_(katakana)": 47, "Sanskrit": 42, "Tagalog": 17}
    assert data.images.mean() < 40   # inverted: mostly background 0


def test_data_omniglot_command(tmp_path, zips, capsys, monkeypatch):
    from layerforge.cli import main
    status = main(["data", "omniglot", "--out", str(tmp_path / "out"), "--from", str(zips),
                   "--resize", "14x14", "--alphabets", "Korean,Tagalog"])
    out = capsys.readouterr().out
    assert status == 0
    assert "(16 images of 4 characters, 14x14, alphabets Korean, Tagalog)" in out
    images, labels = read_lmdb(tmp_path / "out" / "omniglot_lmdb")
    assert images.shape == (16, 1, 14, 14) and labels.max() == 3
    assert (tmp_path / "out" / "labels.txt").read_text().splitlines()[2] == "2 Tagalog/character01"
    monkeypatch.setenv("LAYERFORGE_OMNIGLOT", str(zips))
    assert main(["data", "omniglot", "--out", str(tmp_path / "all")]) == 0
    assert read_lmdb(tmp_path / "all" / "omniglot_lmdb")[0].shape == (28, 1, 105, 105)
    capsys.readouterr()
    assert main(["data", "omniglot", "--out", str(tmp_path / "x"), "--alphabets", "Latin"]) == 2
    assert "no alphabet Latin" in capsys.readouterr().err
