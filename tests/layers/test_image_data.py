"""ImageData on image files and a list file the test writes (Caffe's `path label` format)."""
import numpy as np
import pytest
from PIL import Image

from layerforge.data.images import resize
from layerforge.layer import LayerError
from layerforge.testing import make_layer

COUNT, HEIGHT, WIDTH = 5, 6, 7


@pytest.fixture
def images(tmp_path):
    """Five RGB PNGs in tmp/root/ (one with a space in its name) and list.txt naming them."""
    rng = np.random.default_rng(0)
    (tmp_path / "root").mkdir()
    names = [f"img {i}.png" if i == 2 else f"img{i}.png" for i in range(COUNT)]
    pixels = rng.integers(0, 256, (COUNT, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for name, rgb in zip(names, pixels):
        Image.fromarray(rgb).save(tmp_path / "root" / name)
    labels = [3, 1, 4, 1, 5]
    (tmp_path / "list.txt").write_text("".join(f"{n} {l}\n" for n, l in zip(names, labels)))
    bgr = pixels[..., ::-1].transpose(0, 3, 1, 2)
    return tmp_path, bgr, np.array(labels)


def image_data(folder, options="", transform="", phase="TRAIN", seed=0):
    text = (f'name: "images" type: "ImageData" top: "data" top: "label" transform_param {{ {transform} }} '
            f'image_data_param {{ source: "{folder / "list.txt"}" root_folder: "{folder}/root/" {options} }}')
    layer, _, top = make_layer(text, [], phase, seed, np.float32, 2)
    return layer, top


def batches(layer, top, count):
    out = []
    for _ in range(count):
        layer.forward([], top)
        out.append((top[0].data.copy(), top[1].data.copy()))
    return out


def test_batches_follow_the_list_and_wrap(images):
    folder, bgr, labels = images
    layer, top = image_data(folder, "batch_size: 3", "scale: 0.5")
    assert top[0].shape == (3, 3, HEIGHT, WIDTH) and top[1].shape == (3,)
    for b, (data, label) in enumerate(batches(layer, top, 4)):
        rows = (3 * b + np.arange(3)) % COUNT
        np.testing.assert_array_equal(data, bgr[rows] * np.float32(0.5))
        np.testing.assert_array_equal(label, labels[rows])


def test_grey_resize_and_centre_crop(images):
    folder, bgr, _ = images
    layer, top = image_data(folder, "batch_size: 2 is_color: false new_height: 10 new_width: 8",
                            "crop_size: 4 mean_value: 100", phase="TEST")
    data, _ = batches(layer, top, 1)[0]
    for i in range(2):
        grey = np.asarray(Image.open(folder / "root" / f"img{i}.png").convert("L"))[None]
        expected = resize(grey, 10, 8)[:, 3:7, 2:6].astype(np.float32) - 100
        np.testing.assert_array_equal(data[i], expected)


def test_shuffle_visits_every_image_once_per_epoch(images):
    folder, bgr, labels = images
    layer, top = image_data(folder, "batch_size: 5 shuffle: true", seed=3)
    firsts = []
    for data, label in batches(layer, top, 3):
        order = [int(np.flatnonzero((bgr == item).all(axis=(1, 2, 3)))[0]) for item in data]
        assert sorted(order) == list(range(COUNT))
        np.testing.assert_array_equal(label, labels[order])
        firsts.append(order)
    assert any(order != list(range(COUNT)) for order in firsts)
    first, second = (batches(*image_data(folder, "batch_size: 5 shuffle: true", seed=3), 1)[0][0]
                     for _ in range(2))
    np.testing.assert_array_equal(first, second)


def test_rand_skip_starts_below_it(images):
    folder, bgr, _ = images
    starts = set()
    for seed in range(8):
        layer, top = image_data(folder, "batch_size: 1 rand_skip: 3", seed=seed)
        data, _ = batches(layer, top, 1)[0]
        starts.add(int(np.flatnonzero((bgr == data[0]).all(axis=(1, 2, 3)))[0]))
    assert starts <= {0, 1, 2} and len(starts) > 1


def test_state_resumes_exactly(images):
    folder, _, _ = images
    layer, top = image_data(folder, "batch_size: 2 shuffle: true", "mirror: true crop_size: 5")
    batches(layer, top, 2)
    state = layer.get_state()
    ahead = batches(layer, top, 4)
    layer.set_state(state)
    for (a, b), (c, d) in zip(ahead, batches(layer, top, 4)):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_errors(images):
    folder, _, _ = images
    with pytest.raises(LayerError, match="new_height and new_width or neither"):
        image_data(folder, "batch_size: 1 new_height: 4")
    (folder / "list.txt").write_text("img0.png 1\nimg1.png one\n")
    with pytest.raises(LayerError, match=r"'images' \(ImageData\): image_data_param.source .*list.txt:2: "
                                         r"expected `path label`"):
        image_data(folder, "batch_size: 1")
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(folder / "root" / "small.png")
    (folder / "list.txt").write_text("img0.png 1\nsmall.png 2\n")
    layer, top = image_data(folder, "batch_size: 2")
    with pytest.raises(LayerError, match=r"small.png is 3x3x3 but the first image is 3x6x7; set new_height"):
        layer.forward([], top)
