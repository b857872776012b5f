"""DataTransformer (scale, mean, crop, mirror, augmentation) and the affine warp kernel, against numpy and Pillow references."""
import itertools

import numpy as np
import pytest
from google.protobuf import text_format

from layerforge.data import DatasetError
from layerforge.data.transform import DataTransformer, affine_maps
from layerforge.kernels.transform import affine_bilinear
from layerforge.proto import layerforge_pb2 as pb


def transformer(text, phase=pb.TRAIN, shape=(2, 7, 6)):
    return DataTransformer(text_format.Parse(text, pb.TransformationParameter()), phase, shape)


def reference(image, scale=1.0, mean=None, offset=(0, 0), size=0, flip=False):
    """Caffe's per-datum formula: crop image and mean at one offset, (x - mean) * scale, mirror."""
    x = image.astype(np.float64)
    mean = np.zeros((x.shape[0], 1, 1)) if mean is None else np.asarray(mean, np.float64)
    if size:
        oy, ox = offset
        x = x[:, oy:oy + size, ox:ox + size]
        if mean.shape[1:] != (1, 1):
            mean = mean[:, oy:oy + size, ox:ox + size]
    x = (x - mean) * scale
    return x[:, :, ::-1] if flip else x


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (9, 2, 7, 6), dtype=np.uint8)


def write_mean_file(path, mean, legacy=False):
    blob = pb.BlobProto(data=mean.ravel())
    if legacy:
        blob.num, blob.channels, blob.height, blob.width = (1,) + mean.shape
    else:
        blob.shape.dim.extend((1,) + mean.shape)
    path.write_bytes(blob.SerializeToString())
    return path


@pytest.mark.parametrize("phase", [pb.TRAIN, pb.TEST, pb.RUN])
@pytest.mark.parametrize("text, scale, mean", [
    ("", 1.0, None),
    ("scale: 0.00390625", 0.00390625, None),
    ("scale: 0.5 mean_value: 100", 0.5, [[[100]], [[100]]]),
    ("mean_value: 10 mean_value: 20", 1.0, [[[10]], [[20]]]),
])
def test_scale_and_mean_value(images, phase, text, scale, mean):
    out = transformer(text, phase)(images, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == images.shape
    for x, y in zip(images, out):
        np.testing.assert_allclose(y, reference(x, scale, mean), rtol=1e-6)


@pytest.mark.parametrize("legacy", [False, True])
def test_mean_file_and_centred_crop(images, tmp_path, legacy):
    mean = np.random.default_rng(1).uniform(0, 255, (2, 7, 6)).astype(np.float32)
    path = write_mean_file(tmp_path / "mean.binaryproto", mean, legacy)
    t = transformer(f'scale: 0.25 mean_file: "{path}" crop_size: 3 mirror: true', pb.TEST)
    out = t(images, np.random.default_rng(0))
    assert out.shape == (9, 2, 3, 3) and t.output_shape == (2, 3, 3)
    for x, y in zip(images, out):  # TEST: centred crop at (2, 1), never mirrored
        np.testing.assert_allclose(y, reference(x, 0.25, mean, (2, 1), 3), rtol=1e-5)


def test_random_crop_and_mirror_in_train(images, tmp_path):
    mean = np.random.default_rng(1).uniform(0, 255, (2, 7, 6)).astype(np.float32)
    path = write_mean_file(tmp_path / "mean.binaryproto", mean)
    t = transformer(f'scale: 0.5 mean_file: "{path}" crop_size: 4 mirror: true')
    batch = np.concatenate([images] * 4)
    out = t(batch, np.random.default_rng(3))
    chosen = set()
    for x, y in zip(batch, out):
        matches = [(oy, ox, flip) for oy, ox, flip in itertools.product(range(4), range(3), (False, True))
                   if np.allclose(y, reference(x, 0.5, mean, (oy, ox), 4, flip), rtol=1e-5)]
        assert len(matches) == 1
        chosen.add(matches[0])
    assert len({c[:2] for c in chosen}) > 3 and {c[2] for c in chosen} == {False, True}


def test_config_errors(tmp_path):
    with pytest.raises(DatasetError, match="crop_size 8 is larger than the 7x6 images"):
        transformer("crop_size: 8")
    with pytest.raises(DatasetError, match="mean_value: give 1 or 2 values"):
        transformer("mean_value: 1 mean_value: 2 mean_value: 3")
    path = write_mean_file(tmp_path / "m", np.zeros((2, 7, 6), np.float32))
    with pytest.raises(DatasetError, match="mean_file or mean_value, not both"):
        transformer(f'mean_file: "{path}" mean_value: 1')
    with pytest.raises(DatasetError, match=r"mean_file .* is 2x7x6, the data is 1x7x6"):
        transformer(f'mean_file: "{path}"', shape=(1, 7, 6))
    with pytest.raises(DatasetError, match="mean_file .*nope.*cannot read it"):
        transformer(f'mean_file: "{tmp_path / "nope"}"')
    (tmp_path / "junk").write_bytes(b"\xff\xff\xff")
    with pytest.raises(DatasetError, match="not a binary BlobProto"):
        transformer(f'mean_file: "{tmp_path / "junk"}"')


def test_augmentation_off_by_default(images):
    t = transformer("scale: 0.5 augmentation { seed: 3 }")
    assert t.aug is None
    out = t(images, np.random.default_rng(0))
    for x, y in zip(images, out):
        np.testing.assert_allclose(y, reference(x, 0.5), rtol=1e-6)


@pytest.mark.parametrize("aug", ["crop_pad: 2", "rotation: 20", "shear: 0.3", "zoom: 0.2", "translation: 2",
                                 "brightness: 0.1", "contrast: 0.2"])
def test_augmentation_seeded_and_train_only(images, aug):
    text = f"scale: 0.00390625 augmentation {{ {aug} seed: 7 }}"
    first = transformer(text)(images, np.random.default_rng(0))
    again = transformer(text)(images, np.random.default_rng(1))  # own seed: the rng passed in is unused
    other = transformer(text.replace("seed: 7", "seed: 8"))(images, np.random.default_rng(0))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    shared = text.replace("seed: 7", "")  # seed -1: draws from the rng passed in
    np.testing.assert_array_equal(transformer(shared)(images, np.random.default_rng(4)),
                                  transformer(shared)(images, np.random.default_rng(4)))
    for phase in (pb.TEST, pb.RUN):
        np.testing.assert_allclose(transformer(text, phase)(images, np.random.default_rng(0)),
                                   images / 256.0, rtol=1e-6)


def test_crop_pad_is_a_zero_filled_shift(images):
    out = transformer("augmentation { crop_pad: 2 }")(images, np.random.default_rng(0))
    shifts = set()
    for x, y in zip(images, out):
        padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if np.array_equal(y, padded[:, dy:dy + 7, dx:dx + 6])]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 3


def test_rotation_draws_seeded_angles(images):
    out = transformer("augmentation { rotation: 30 seed: 5 }")(images, np.random.default_rng(0))
    angles = np.radians(np.random.default_rng(5).uniform(-30, 30, len(images)))
    np.testing.assert_allclose(out, rotate_reference(images.astype(np.float64), angles), rtol=1e-5, atol=1e-3)


def test_brightness_contrast_are_per_image_affine(images):
    out = transformer("scale: 0.01 augmentation { brightness: 0.3 contrast: 0.2 }")(
        images, np.random.default_rng(0))
    gains, offsets = [], []
    for x, y in zip(images, out):
        gain, offset = np.polyfit(x.ravel() * 0.01, y.ravel(), 1)
        np.testing.assert_allclose(y, gain * x * 0.01 + offset, atol=1e-5)
        gains.append(gain)
        offsets.append(offset)
    assert 0.8 <= min(gains) and max(gains) <= 1.2 and np.ptp(gains) > 0.01
    assert -0.3 <= min(offsets) and max(offsets) <= 0.3 and np.ptp(offsets) > 0.01


def rotate_reference(src, angles):
    """Numpy bilinear rotation about the centre with zero fill (inverse mapping, as the kernel)."""
    num, _, height, width = src.shape
    cy, cx = (height - 1) / 2, (width - 1) / 2
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.zeros(src.shape)
    for m, angle in enumerate(angles):
        sx = cx + np.cos(angle) * (x - cx) - np.sin(angle) * (y - cy)
        sy = cy + np.sin(angle) * (x - cx) + np.cos(angle) * (y - cy)
        x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
        for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
            for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
                values = src[m][:, np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)]
                out[m] += np.where(inside, wy * wx * values, 0)
    return out


def affine_reference(src, maps):
    """Numpy bilinear warp by inverse maps about the centre with zero fill (as the kernel)."""
    num, _, height, width = src.shape
    cy, cx = (height - 1) / 2, (width - 1) / 2
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.zeros(src.shape)
    for m, ((a, b, tx), (c, d, ty)) in enumerate(maps):
        sx = cx + a * (x - cx) + b * (y - cy) + tx
        sy = cy + c * (x - cx) + d * (y - cy) + ty
        x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
        for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
            for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
                values = src[m][:, np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)]
                out[m] += np.where(inside, wy * wx * values, 0)
    return out


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("shape", [(1, 1, 5, 5), (3, 2, 7, 4), (2, 3, 1, 6)])
def test_affine_bilinear_kernel(jit, shape):
    rng = np.random.default_rng(2)
    src = rng.standard_normal(shape).astype(np.float32)
    maps = np.concatenate([rng.uniform(-1.5, 1.5, (shape[0], 2, 2)), rng.uniform(-2, 2, (shape[0], 2, 1))], 2)
    out = np.empty_like(src)
    (affine_bilinear if jit else affine_bilinear.py_func)(src, maps, out)
    np.testing.assert_allclose(out, affine_reference(src.astype(np.float64), maps), rtol=1e-5, atol=1e-5)


def test_affine_bilinear_matches_pillow():
    """Pillow's AFFINE transform (pixel centres at +0.5, output -> input) with BILINEAR gives
    the same interior pixels for the same map."""
    from PIL import Image
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 255, (1, 1, 21, 23)).astype(np.float32)
    (a, b, tx), (c, d, ty) = maps = np.array([[[0.9, 0.2, 1.3], [-0.15, 1.1, -0.7]]])[0]
    out = np.empty_like(src)
    affine_bilinear(src, maps[None], out)
    cy, cx = 10.0, 11.0
    # index coords i = pillow coords - 0.5: s + 0.5 = a·(x+0.5) + b·(y+0.5) + const
    data = (a, b, cx + tx + 0.5 - a * (cx + 0.5) - b * (cy + 0.5),
            c, d, cy + ty + 0.5 - c * (cx + 0.5) - d * (cy + 0.5))
    pillow = np.asarray(Image.fromarray(src[0, 0], "F").transform((23, 21), Image.AFFINE, data, Image.BILINEAR))
    np.testing.assert_allclose(out[0, 0, 4:-4, 4:-4], pillow[4:-4, 4:-4], rtol=1e-4, atol=1e-2)


def test_affine_bilinear_exact_maps():
    src = np.arange(2 * 25, dtype=np.float32).reshape(2, 1, 5, 5)
    out = np.empty_like(src)
    identity = [[1.0, 0, 0], [0, 1.0, 0]]
    quarter = [[0.0, -1, 0], [1, 0.0, 0]]      # the map of a counter-clockwise quarter turn
    affine_bilinear(src, np.array([identity, quarter]), out)
    np.testing.assert_array_equal(out[0], src[0])
    np.testing.assert_allclose(out[1, 0], np.rot90(src[1, 0]), atol=1e-4)
    shift = np.array([[[1.0, 0, -1], [0, 1.0, 2]]])  # output (x, y) reads source (x-1, y+2)
    affine_bilinear(src[:1], shift, out[:1])
    expected = np.zeros((5, 5), np.float32)
    expected[:3, 1:] = src[0, 0, 2:, :4]
    np.testing.assert_array_equal(out[0, 0], expected)


def test_koch_affine_maps_compose_zoom_shear_rotation_shift():
    """affine_maps inverts turn · shear · zoom and maps the output centre + shift to the source
    centre; with only translation set the map is a pure integer-range shift."""
    aug = pb.AugmentationParameter(rotation=10, shear=0.3, zoom=0.2, translation=2)
    maps = affine_maps(aug, 500, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    angle = np.radians(rng.uniform(-10, 10, 500))
    shear = rng.uniform(-aug.shear, aug.shear, (500, 2))    # float32 fields: 0.3 is 0.30000001
    zoom = rng.uniform(1 - aug.zoom, 1 + aug.zoom, (500, 2))
    shift = rng.uniform(-2, 2, (500, 2))
    for m in (0, 1, 499):
        cos, sin = np.cos(angle[m]), np.sin(angle[m])
        forward = (np.array([[cos, sin], [-sin, cos]]) @ np.array([[1, shear[m, 0]], [shear[m, 1], 1]])
                   @ np.diag(zoom[m]))
        np.testing.assert_allclose(maps[m, :, :2] @ forward, np.eye(2), atol=1e-12)
        np.testing.assert_allclose(maps[m, :, :2] @ shift[m] + maps[m, :, 2], 0, atol=1e-12)
    shifts = affine_maps(pb.AugmentationParameter(translation=3), 200, np.random.default_rng(1))
    np.testing.assert_array_equal(shifts[:, :, :2], np.broadcast_to(np.eye(2), (200, 2, 2)))
    assert -3 <= shifts[:, :, 2].min() < -2.5 and 2.5 < shifts[:, :, 2].max() <= 3


def test_koch_augmentation_warps_with_its_seeded_maps(images):
    text = "augmentation { rotation: 10 shear: 0.3 zoom: 0.2 translation: 2 seed: 5 }"
    out = transformer(text)(images, np.random.default_rng(0))
    maps = affine_maps(pb.AugmentationParameter(rotation=10, shear=0.3, zoom=0.2, translation=2),
                       len(images), np.random.default_rng(5))
    np.testing.assert_allclose(out, affine_reference(images.astype(np.float64), maps), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(transformer(text, pb.TEST)(images, np.random.default_rng(0)), images)
