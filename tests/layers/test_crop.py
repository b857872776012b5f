"""Crop: Caffe's test_crop_layer.cpp cases (shapes, offsets, 5-D), gradients, errors."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer


def text(options=""):
    return f'name: "c" type: "Crop" bottom: "x" bottom: "ref" top: "y" crop_param {{ {options} }}'


def blobs(shape0=(2, 4, 5, 4), shape1=(2, 3, 4, 2), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape0), rng.standard_normal(shape1)


@pytest.mark.parametrize("options, shape0, shape1, window", [
    ("axis: 0", (2, 4, 5, 4), (2, 3, 4, 2), np.s_[:, :3, :4, :2]),                      # TestCropAll
    ("", (2, 4, 5, 4), (2, 3, 4, 2), np.s_[:, :, :4, :2]),                              # default axis 2
    ("axis: -1", (2, 4, 5, 4), (2, 3, 4, 2), np.s_[:, :, :, :2]),                       # NegativeIndexing
    ("", (2, 4, 5, 4), (2, 5, 4, 2), np.s_[:, :, :4, :2]),                              # DimensionsCheck
    ("axis: 0 offset: 0 offset: 1 offset: 1 offset: 2", (2, 4, 5, 4), (2, 3, 4, 2), np.s_[:, 1:4, 1:5, 2:4]),
    ("axis: 2 offset: 1 offset: 2", (2, 4, 5, 4), (2, 3, 4, 2), np.s_[:, :, 1:5, 2:4]),  # TestCropHW
    ("axis: 1 offset: 1", (2, 4, 5, 4), (2, 3, 4, 2), np.s_[:, 1:4, 1:5, 1:3]),
    ("axis: 2 offset: 1 offset: 2 offset: 0", (2, 4, 5, 4, 2), (2, 3, 4, 2, 1), np.s_[:, :, 1:5, 2:4, 0:1]),  # 5-D
])
def test_forward_and_gradient(options, shape0, shape1, window):
    x, ref = blobs(shape0, shape1)
    (y,) = forward(text(options), [x, ref])
    np.testing.assert_array_equal(y, x[window])
    assert check_gradient(text(options), [x, ref], check_bottoms=[0], max_checks=80) > 0


def test_reference_gets_no_gradient():
    x, ref = blobs()
    layer, bottom, top = make_layer(text(), [x, ref])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    bottom[1].diff[...] = 3
    layer.backward(top, [True, True], bottom)
    assert not bottom[1].diff.any()
    assert bottom[0].diff.sum() == top[0].count


@pytest.mark.parametrize("options, shape1, message", [
    ("axis: 2 offset: 1 offset: 2 offset: 3", (2, 3, 4, 2), "gives 3 offsets but axis 2 .* leaves 2 axes"),
    ("offset: 2", (2, 3, 4, 2), r"crop of axis 2 \(size 4 at offset 2\) does not fit"),
    ("", (2, 3, 4), "must have the same number of axes"),
    ("axis: 4", (2, 3, 4, 2), "crop_param.axis: axis 4 is out of range"),
])
def test_errors(options, shape1, message):
    x, ref = blobs(shape1=shape1)
    with pytest.raises(LayerError, match=message):
        forward(text(options), [x, ref])


@pytest.mark.parametrize("options, independent", [("", True), ("axis: 1", True), ("axis: 0", False)])
def test_batch_independence(options, independent):
    layer, bottom, _ = make_layer(text(options), list(blobs()))
    assert layer.batch_independent_for(bottom) is independent
