"""LRN: Caffe's reference loops (test_lrn_layer.cpp) for both regions, gradients, errors."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward


def text(options=""):
    return f'name: "norm" type: "LRN" bottom: "x" top: "y" lrn_param {{ {options} }}'


def caffe_reference(x, size=5, alpha=1.0, beta=0.75, k=1.0, within=False):
    """Caffe's ReferenceLRNForward, element by element (k added, as the layer does, across channels)."""
    num, channels, height, width = x.shape
    y = np.empty_like(x)
    for n in range(num):
        for c in range(channels):
            for h in range(height):
                for w in range(width):
                    if within:
                        h0, w0 = h - (size - 1) // 2, w - (size - 1) // 2
                        window = x[n, c, max(h0, 0):min(h0 + size, height), max(w0, 0):min(w0 + size, width)]
                        scale = 1.0 + (window ** 2).sum() * alpha / (size * size)
                    else:
                        c0 = c - (size - 1) // 2
                        window = x[n, max(c0, 0):min(c0 + size, channels), h, w]
                        scale = k + (window ** 2).sum() * alpha / size
                    y[n, c, h, w] = x[n, c, h, w] / scale ** beta
    return y


def blob(shape=(2, 7, 3, 3), seed=1701):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("options, kwargs", [
    ("", {}),                                                            # TestForwardAcrossChannels
    ("local_size: 15", {"size": 15}),                                    # ...LargeRegion
    ("local_size: 5 alpha: 0.0001 beta: 0.75", {"alpha": 1e-4}),         # AlexNet's norm1
    ("k: 2 alpha: 3 beta: 0.5 local_size: 3", {"k": 2, "alpha": 3, "beta": 0.5, "size": 3}),
    ("norm_region: WITHIN_CHANNEL local_size: 3", {"within": True, "size": 3}),   # TestForwardWithinChannel
    ("norm_region: WITHIN_CHANNEL local_size: 5 alpha: 2 beta: 0.6 k: 7",  # k has no effect within a channel
     {"within": True, "size": 5, "alpha": 2, "beta": 0.6}),
])
def test_forward_matches_caffe_reference(options, kwargs):
    x = blob()
    (y,) = forward(text(options), [x])
    assert y.shape == (2, 7, 3, 3)
    np.testing.assert_allclose(y, caffe_reference(x, **kwargs), rtol=1e-6, atol=1e-7)  # alpha, beta are floats


@pytest.mark.parametrize("options", ["", "local_size: 15", "k: 2 alpha: 3 local_size: 3",
                                     "norm_region: WITHIN_CHANNEL local_size: 3",
                                     "norm_region: WITHIN_CHANNEL local_size: 5 alpha: 4 beta: 0.9"])
def test_gradient(options):
    assert check_gradient(text(options), [blob((2, 7, 4, 3), seed=3)], max_checks=80) > 0


def test_float32_matches_float64():
    x = blob((2, 16, 5, 5), seed=4)
    (y32,) = forward(text("alpha: 0.5"), [x.astype(np.float32)], dtype=np.float32)
    (y64,) = forward(text("alpha: 0.5"), [x])
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options, shape, message", [
    ("local_size: 4", (1, 3, 2, 2), "local_size must be odd, got 4"),
    ("", (2, 3, 4), r"needs a 4-D bottom \(N, C, H, W\), got shape \(2, 3, 4\)"),
])
def test_errors(options, shape, message):
    with pytest.raises(LayerError, match=message):
        forward(text(options), [np.zeros(shape)])
