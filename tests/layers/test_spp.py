"""SPP: Caffe's output sizes, forward against a numpy pyramid of poolings, gradients."""
import math

import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer


def spp_text(height, pool="MAX"):
    return f'name: "spp" type: "SPP" bottom: "x" top: "y" spp_param {{ pyramid_height: {height} pool: {pool} }}'


def reference_pool(x, bins, pool):
    """Caffe's PoolingLayer with SPPLayer::GetPoolingParam's kernel, stride and pad."""
    num, channels, height, width = x.shape
    geometry = []
    for size in (height, width):
        kernel = math.ceil(size / bins)
        pad = (kernel * bins - size + 1) // 2
        pooled = math.ceil((size + 2 * pad - kernel) / kernel) + 1
        if pad and (pooled - 1) * kernel >= size + pad:
            pooled -= 1
        geometry.append((kernel, pad, pooled))
    (kh, ph, oh), (kw, pw, ow) = geometry
    y = np.zeros((num, channels, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * kh - ph, j * kw - pw
            window = x[:, :, max(y0, 0):min(y0 + kh, height), max(x0, 0):min(x0 + kw, width)]
            if pool == "MAX":
                y[:, :, i, j] = window.max(axis=(2, 3))
            else:
                size = (min(y0 + kh, height + ph) - y0) * (min(x0 + kw, width + pw) - x0)
                y[:, :, i, j] = window.sum(axis=(2, 3)) / size
    return y


def reference_spp(x, pyramid_height, pool):
    levels = [reference_pool(x, 2 ** level, pool) for level in range(pyramid_height)]
    if pyramid_height == 1:
        return levels[0]
    return np.concatenate([level.reshape(len(x), -1) for level in levels], axis=1)


@pytest.mark.parametrize("shape, height, channels", [
    ((2, 3, 9, 8), 3, 63),         # Caffe's TestSetup: 3 * (1 + 4 + 16)
    ((4, 3, 1024, 765), 5, 1023),  # TestEqualOutputDims: 3 * 341
    ((10, 3, 7, 7), 3, 63),        # TestEqualOutputDims2
])
def test_caffe_output_sizes(shape, height, channels):
    _, _, top = make_layer(spp_text(height), [np.zeros(shape, np.float32)], dtype=np.float32)
    assert top[0].shape == (shape[0], channels)


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("shape, height", [((2, 3, 9, 8), 3), ((2, 2, 7, 7), 3), ((1, 2, 5, 6), 2),
                                           ((3, 2, 4, 5), 1)])
def test_forward_and_gradient(shape, height, pool):
    x = np.random.default_rng(0).standard_normal(shape)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        layer, bottom, top = make_layer(spp_text(height, pool), [x], dtype=dtype)
        layer.forward(bottom, top)
        expected = reference_spp(bottom[0].data.astype(np.float64), height, pool)
        assert top[0].shape == expected.shape
        np.testing.assert_allclose(top[0].data, expected, rtol=rtol, atol=rtol)
    assert check_gradient(spp_text(height, pool), [x], max_checks=300) > 0


def test_pyramid_height_one_keeps_the_pooling_shape():
    _, _, top = make_layer(spp_text(1), [np.zeros((2, 3, 6, 5))])
    assert top[0].shape == (2, 3, 1, 1)


@pytest.mark.parametrize("text, shape, message", [
    (spp_text(0), (1, 1, 4, 4), "pyramid_height"),
    (spp_text(2, "STOCHASTIC"), (1, 1, 4, 4), "STOCHASTIC"),
    (spp_text(3), (1, 1, 3, 8), "pad"),        # 3 rows in 4 bins: kernel 1, pad 1 (Caffe's Pooling refuses it)
    (spp_text(2), (1, 4, 4), "num, channels, height, width"),
])
def test_bad_configurations(text, shape, message):
    with pytest.raises(LayerError, match=message):
        make_layer(text, [np.zeros(shape)])
