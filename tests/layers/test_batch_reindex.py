"""BatchReindex: Caffe's test (permutation with repeats of a 5-item batch), gradients that accumulate."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer

TEXT = 'name: "r" type: "BatchReindex" bottom: "x" bottom: "idx" top: "y"'
# Caffe's TestForward: a 5×4×3×2 bottom reindexed by 2 0 1 2 0 3 2 0 (repeats, item 4 unused).
PERMUTATION = np.array([2.0, 0, 1, 2, 0, 3, 2, 0])


def bottom(seed=0):
    return np.random.default_rng(seed).standard_normal((5, 4, 3, 2))


def test_forward():
    x = bottom()
    (y,) = forward(TEXT, [x, PERMUTATION])
    assert y.shape == (8, 4, 3, 2)
    np.testing.assert_array_equal(y, x[PERMUTATION.astype(int)])


def test_gradient():
    assert check_gradient(TEXT, [bottom(1), PERMUTATION], check_bottoms=[0], max_checks=120) > 0


def test_gradient_accumulates_over_repeats():
    layer, blobs, top = make_layer(TEXT, [bottom(2), PERMUTATION])
    layer.forward(blobs, top)
    top[0].diff[...] = np.arange(8.0).reshape(8, 1, 1, 1)
    blobs[1].diff[...] = 4
    layer.backward(top, [True, True], blobs)
    np.testing.assert_array_equal(blobs[0].diff[:, 0, 0, 0], [1 + 4 + 7, 2, 0 + 3 + 6, 5, 0])
    assert not blobs[1].diff.any()


@pytest.mark.parametrize("index, message", [
    (np.array([0.0, 5.0]), r"index 5 is outside the batch \[0, 5\)"),
    (np.array([-1.0]), r"index -1 is outside"),
    (np.zeros((2, 1)), "index bottom must be 1-D"),
])
def test_errors(index, message):
    with pytest.raises(LayerError, match=message):
        forward(TEXT, [bottom(), index])
