"""Filter: Caffe's test_filter_layer.cpp (selector 0 1 1 0 over 4 items), several bottoms, gradients."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer

TEXT = ('name: "f" type: "Filter" bottom: "a" bottom: "b" bottom: "sel" top: "fa" top: "fb"')


def inputs(selector=(0, 1, 1, 0), seed=0):
    rng = np.random.default_rng(seed)
    n = len(selector)
    return [rng.standard_normal((n, 3, 6, 4)), rng.standard_normal((n, 5)),
            np.array(selector, float).reshape(n, 1, 1, 1)]


def test_forward_keeps_selected_items():
    a, b, sel = inputs()
    fa, fb = forward(TEXT, [a, b, sel], num_tops=2)
    np.testing.assert_array_equal(fa, a[[1, 2]])
    np.testing.assert_array_equal(fb, b[[1, 2]])


def test_first_reshape_keeps_every_item():
    """Caffe's TestReshape: at set-up the tops have all N items; after reshape, only the selected."""
    layer, bottom, top = make_layer(TEXT, inputs(), num_tops=2)
    assert top[0].shape == (4, 3, 6, 4) and top[1].shape == (4, 5)
    layer.reshape(bottom, top)
    assert top[0].shape == (2, 3, 6, 4) and top[1].shape == (2, 5)


@pytest.mark.parametrize("selector", [(0, 1, 1, 0), (1, 0, 0, 1, 1), (0, 0, 0)])
def test_gradient(selector):
    assert check_gradient(TEXT, inputs(selector), num_tops=2, check_bottoms=[0, 1], max_checks=80) > 0


def test_backward_reaches_only_selected_items():
    a, b, sel = inputs()
    layer, bottom, top = make_layer(TEXT, [a, b, sel], num_tops=2)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    top[1].diff[...] = 2
    bottom[2].diff[...] = 5
    layer.backward(top, [True, True, True], bottom)
    assert np.all(bottom[0].diff[[1, 2]] == 1) and not bottom[0].diff[[0, 3]].any()
    assert np.all(bottom[1].diff[[1, 2]] == 2) and not bottom[1].diff[[0, 3]].any()
    assert not bottom[2].diff.any()


@pytest.mark.parametrize("bottoms, message", [
    ([np.zeros((4, 2)), np.zeros((4, 2))], r"selector \(last bottom\) shape \(4, 2\)"),
    ([np.zeros((3, 2)), np.zeros(4)], "must have the same first dimension"),
])
def test_errors(bottoms, message):
    with pytest.raises(LayerError, match=message):
        forward('name: "f" type: "Filter" bottom: "a" bottom: "sel" top: "fa"', bottoms)


def test_top_count():
    with pytest.raises(LayerError, match="one top per filtered bottom"):
        forward('name: "f" type: "Filter" bottom: "a" bottom: "sel" top: "fa" top: "x"', inputs()[1:], num_tops=2)
