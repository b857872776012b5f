"""Image reading (BGR, as OpenCV) and OpenCV-style bilinear resizing."""
import numpy as np
import pytest
from PIL import Image

from layerforge.data import DatasetError
from layerforge.data.images import read_image, resize


def test_resize_up_matches_opencv_inter_linear():
    image = np.array([[[0, 100], [200, 40]]], np.uint8)
    # OpenCV's INTER_LINEAR maps output pixel centres to (x + 0.5) / 2 - 0.5, clamped at the edges.
    expected_rows = np.array([[0, 100], [50, 85], [150, 55], [200, 40]], np.float64)
    expected = np.stack([expected_rows[:, 0] + (expected_rows[:, 1] - expected_rows[:, 0]) * w
                         for w in (0, 0.25, 0.75, 1)], axis=1)
    np.testing.assert_array_equal(resize(image, 4, 4)[0], np.rint(expected))


def test_resize_down_by_two_averages_pairs():
    image = np.arange(48, dtype=np.uint8).reshape(3, 4, 4) * 5
    expected = image.reshape(3, 2, 2, 2, 2).astype(np.float64).mean(axis=(2, 4))
    np.testing.assert_array_equal(resize(image, 2, 2), np.rint(expected))
    assert resize(image, 4, 4) is image


def test_read_image_is_bgr_and_grey(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb[:, :, ::-1].transpose(2, 0, 1))
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", is_color=False), grey[None])
    (tmp_path / "b.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="b.png: cannot read the image"):
        read_image(tmp_path / "b.png")
