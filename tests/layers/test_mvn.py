"""MVN: numpy reference for the three modes, Caffe's zero-mean / unit-variance checks, gradients."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import check_in_place


def text(options=""):
    return f'name: "mvn" type: "MVN" bottom: "x" top: "y" mvn_param {{ {options} }}'


def reference(x, normalize_variance=True, across_channels=False, eps=1e-9):
    axes = tuple(range(1 if across_channels else 2, x.ndim))
    centred = x - x.mean(axis=axes, keepdims=True)
    if not normalize_variance:
        return centred
    return centred / (np.sqrt((centred ** 2).mean(axis=axes, keepdims=True)) + eps)


MODES = [("", {}), ("normalize_variance: false", {"normalize_variance": False}),
         ("across_channels: true", {"across_channels": True}),
         ("across_channels: true normalize_variance: false", {"across_channels": True, "normalize_variance": False}),
         ("eps: 0.5", {"eps": 0.5})]


@pytest.mark.parametrize("options, kwargs", MODES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 2, 6), (4, 3)])
def test_forward_and_gradient(options, kwargs, shape):
    x = np.random.default_rng(0).normal(1, 2, shape)
    (y,) = forward(text(options), [x])
    np.testing.assert_allclose(y, reference(x, **kwargs), rtol=1e-10, atol=1e-12)
    if len(shape) > 2 or "across" in options:
        assert check_gradient(text(options), [x], max_checks=60) > 0


@pytest.mark.parametrize("options, axes, unit_variance", [
    ("", (2, 3), True), ("normalize_variance: false", (2, 3), False), ("across_channels: true", (1, 2, 3), True)])
def test_caffe_statistics(options, axes, unit_variance):
    """Caffe's TestForward / MeanOnly / AcrossChannels: mean 0 (and variance 1) per group, within 1e-3."""
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    (y,) = forward(text(options), [x])
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-3)
    if unit_variance:
        np.testing.assert_allclose((y ** 2).mean(axis=axes), 1, atol=1e-3)


def test_constant_group_is_finite():
    """A constant group has std 0: its output is 0 and its gradient (dy - mean dy) / eps stays finite."""
    x = np.ones((2, 2, 3))
    x[1] = np.random.default_rng(2).standard_normal((2, 3))
    layer, bottom, top = make_layer(text(), [x])
    layer.forward(bottom, top)
    assert np.all(top[0].data[0] == 0)
    top[0].diff[...] = np.random.default_rng(3).standard_normal(x.shape)
    with np.errstate(all="raise"):
        layer.backward(top, [True], bottom)
    dy = top[0].diff[0]
    np.testing.assert_allclose(bottom[0].diff[0], (dy - dy.mean(axis=1, keepdims=True)) / np.float32(1e-9),
                               rtol=1e-6)


def test_in_place():
    check_in_place(text(), np.random.default_rng(3).normal(0, 2, (2, 3, 4)))
