"""Dropout: TRAIN drops with probability dropout_ratio and scales by 1 / (1 - ratio); TEST and RUN pass through."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import SHAPES, check_in_place


def dropout_text(ratio=None):
    options = "" if ratio is None else f"dropout_param {{ dropout_ratio: {ratio} }}"
    return f'name: "d" type: "Dropout" bottom: "x" top: "y" {options}'


@pytest.mark.parametrize("ratio", [None, 0.25, 0.75])
def test_train_drops_and_scales(ratio):
    p = 0.5 if ratio is None else ratio
    x = np.random.default_rng(0).uniform(0.5, 1.5, (40, 25, 10))
    (y,) = forward(dropout_text(ratio), [x])
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-12)
    assert abs((1 - kept.mean()) - p) < 0.02  # 10000 draws: 4+ standard deviations


def test_train_mask_follows_the_seed():
    x = np.ones((30, 30))
    first, again, other = (forward(dropout_text(), [x], seed=s)[0] for s in (3, 3, 4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("phase", ["TEST", "RUN"])
def test_test_and_run_are_identity(phase):
    x = np.random.default_rng(0).standard_normal((4, 5))
    layer, bottom, top = make_layer(dropout_text(0.5), [x], phase=phase)
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x)
    top[0].diff[...] = 2.5
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, np.full(x.shape, 2.5))


def test_ratio_zero_keeps_everything():
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_array_equal(forward(dropout_text(0), [x])[0], x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("phase", ["TRAIN", "TEST"])
def test_gradient(shape, phase):
    x = np.random.default_rng(0).standard_normal(shape)
    assert check_gradient(dropout_text(0.4), [x], phase=phase, max_checks=40) > 0


@pytest.mark.parametrize("phase", ["TRAIN", "TEST"])
def test_in_place_matches_separate_blobs(phase):
    check_in_place(dropout_text(0.3), np.random.default_rng(1).standard_normal((6, 7)), phase=phase)


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_bad_ratio_raises(ratio):
    with pytest.raises(LayerError, match="dropout_ratio"):
        make_layer(dropout_text(ratio), [np.ones((2, 2))])
