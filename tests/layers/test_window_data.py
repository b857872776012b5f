"""WindowData on a tiny window file and images the test writes (Caffe's R-CNN window format)."""
import numpy as np
import pytest
from PIL import Image

from layerforge.data.images import resize
from layerforge.layer import LayerError
from layerforge.testing import make_layer

HEIGHT, WIDTH = 20, 24


@pytest.fixture
def images(tmp_path):
    """Two RGB PNGs; returns the folder and their BGR C×H×W pixels."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for i, rgb in enumerate(pixels):
        Image.fromarray(rgb).save(tmp_path / f"im{i}.png")
    return tmp_path, pixels[..., ::-1].transpose(0, 3, 1, 2)


def window_file(folder, windows):
    """windows: {image index: [(label, overlap, x1, y1, x2, y2)]} -> window_file.txt."""
    lines = []
    for index, rows in windows.items():
        lines += [f"# {index}", f"im{index}.png", "3", str(HEIGHT), str(WIDTH), str(len(rows))]
        lines += [" ".join(map(str, row)) for row in rows]
    (folder / "window_file.txt").write_text("\n".join(lines) + "\n")


def window_data(folder, options="", transform="crop_size: 10", seed=0):
    text = (f'name: "win" type: "WindowData" top: "data" top: "label" transform_param {{ {transform} }} '
            f'window_data_param {{ source: "{folder / "window_file.txt"}" root_folder: "{folder}/" '
            f'fg_threshold: 0.5 bg_threshold: 0.3 {options} }}')
    layer, _, top = make_layer(text, [], "TRAIN", seed, np.float32, 2)
    layer.forward([], top)
    return layer, top


def test_warp_background_then_foreground(images):
    folder, bgr = images
    # fg (label 2) in image 1, bg in image 0, and a window between the thresholds that is never used.
    window_file(folder, {0: [(7, 0.1, 2, 3, 9, 12), (5, 0.4, 0, 0, 5, 5)], 1: [(2, 0.8, 4, 1, 20, 9)]})
    layer, top = window_data(folder, "batch_size: 4 fg_fraction: 0.5", "crop_size: 10 scale: 0.5 mean_value: 10")
    assert top[0].shape == (4, 3, 10, 10)
    np.testing.assert_array_equal(top[1].data, [0, 0, 2, 2])
    bg = (resize(bgr[0][:, 3:13, 2:10], 10, 10).astype(np.float32) - 10) * np.float32(0.5)
    fg = (resize(bgr[1][:, 1:10, 4:21], 10, 10).astype(np.float32) - 10) * np.float32(0.5)
    for i, expected in enumerate([bg, bg, fg, fg]):
        np.testing.assert_array_equal(top[0].data[i], expected)


def test_context_pad_inside_the_image(images):
    folder, bgr = images
    window_file(folder, {0: [(1, 0.9, 4, 4, 11, 11), (0, 0.0, 4, 4, 11, 11)]})
    # crop 10, context_pad 1: the 8x8 window grows by 10/8 about its centre (8, 8) to 3..13.
    _, top = window_data(folder, "batch_size: 2 context_pad: 1")
    expected = resize(bgr[0][:, 3:14, 3:14], 10, 10).astype(np.float32)
    for item in top[0].data:
        np.testing.assert_array_equal(item, expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_context_pad_clipped_at_the_corner_and_mirrored(images, seed):
    folder, bgr = images
    window_file(folder, {0: [(1, 0.9, 0, 0, 7, 7), (0, 0.1, 0, 0, 7, 7)]})
    # The grown region -1..9 sticks out by one pixel (one output pixel at 10/11 scale): the
    # 10x10 image part is warped to 9x9 below/right of a zero row and column; mirrored, the
    # column pad moves to the other side (Caffe mirrors the padding too).
    _, top = window_data(folder, "batch_size: 8 context_pad: 1", "crop_size: 10 mirror: true", seed)
    warped = resize(bgr[0][:, 0:10, 0:10], 9, 9).astype(np.float32)
    plain = np.zeros((3, 10, 10), np.float32)
    plain[:, 1:, 1:] = warped
    flipped = np.zeros((3, 10, 10), np.float32)
    flipped[:, 1:, :9] = warped[:, :, ::-1]
    kinds = [0 if np.array_equal(item, plain) else 1 if np.array_equal(item, flipped) else -1
             for item in top[0].data]
    assert -1 not in kinds and len(set(kinds)) == 2


def test_square_crop_mode(images):
    folder, bgr = images
    window_file(folder, {0: [], 1: [(3, 0.9, 6, 8, 13, 11), (0, 0.0, 6, 8, 13, 11)]})
    # 8 wide, 4 high: made square (half size 4 about centre (10, 10)) -> 6..14 both ways.
    _, top = window_data(folder, 'batch_size: 2 crop_mode: "square"', "crop_size: 9")
    for item in top[0].data:
        np.testing.assert_array_equal(item, resize(bgr[1][:, 6:15, 6:15], 9, 9).astype(np.float32))


def test_sampling_covers_every_window(images):
    folder, _ = images
    window_file(folder, {0: [(1, 0.9, 0, 0, 9, 9), (2, 0.7, 5, 5, 15, 15), (0, 0.2, 1, 1, 4, 4)],
                         1: [(3, 0.6, 2, 2, 12, 12), (0, 0.0, 3, 3, 8, 8)]})
    layer, top = window_data(folder, "batch_size: 8 fg_fraction: 0.25")
    labels = []
    for _ in range(20):
        layer.forward([], top)
        assert (top[1].data[:6] == 0).all()
        labels += list(top[1].data[6:])
    assert set(labels) == {1, 2, 3}


def test_errors(images):
    folder, _ = images
    window_file(folder, {0: [(1, 0.9, 0, 0, 9, 9)]})
    with pytest.raises(LayerError, match=r"'win' \(WindowData\): window_data_param.source .*needs foreground "
                                         r"and background windows, found 1 and 0"):
        window_data(folder, "batch_size: 2")
    with pytest.raises(LayerError, match="crop_size .* must be set"):
        window_data(folder, "batch_size: 2", "")
    (folder / "window_file.txt").write_text("# 0\nim0.png\n3\n20\n")
    with pytest.raises(LayerError, match="truncated or malformed after image 0"):
        window_data(folder, "batch_size: 2")
    window_file(folder, {0: [(0, 0.9, 0, 0, 9, 9), (0, 0.1, 0, 0, 9, 9)]})
    with pytest.raises(LayerError, match="a foreground window has label 0"):
        window_data(folder, "batch_size: 2")


def test_window_naming_a_missing_image(images):
    folder, _ = images
    (folder / "window_file.txt").write_text("# 3\nim0.png\n3 20 24\n2\n1 0.9 0 0 9 9\n0 0.1 0 0 9 9\n")
    with pytest.raises(LayerError, match="names image index 3, but the file lists 1 images"):
        window_data(folder, "batch_size: 2")
