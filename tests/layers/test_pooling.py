"""Pooling: MAX/AVE forward against a numpy transcription of Caffe, gradients, output sizes, errors."""
import math

import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer


def pool_text(options, tops=1):
    return ('name: "pool" type: "Pooling" bottom: "x" ' + 'top: "y" ' * tops +
            f'pooling_param {{ {options} }}')


def pooled_size(size, kernel, stride, pad, ceil):
    pooled = (math.ceil if ceil else math.floor)((size + 2 * pad - kernel) / stride) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def reference_pool(x, method, kernel, stride, pad, ceil=True):
    """Top and argmax (flat y*W+x) per Caffe's pooling_layer.cpp."""
    num, channels, height, width = x.shape
    pooled = [pooled_size(s, k, st, p, ceil) for s, k, st, p in zip((height, width), kernel, stride, pad)]
    top = np.zeros((num, channels) + tuple(pooled))
    argmax = np.zeros_like(top)
    for py in range(pooled[0]):
        for px in range(pooled[1]):
            y0, x0 = py * stride[0] - pad[0], px * stride[1] - pad[1]
            y1, x1 = min(y0 + kernel[0], height + pad[0]), min(x0 + kernel[1], width + pad[1])
            divisor = (y1 - y0) * (x1 - x0)
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
            window = x[:, :, y0:y1, x0:x1].reshape(num, channels, -1)
            if method == "MAX":
                top[:, :, py, px] = window.max(axis=2)
                flat = window.argmax(axis=2)
                argmax[:, :, py, px] = (y0 + flat // (x1 - x0)) * width + x0 + flat % (x1 - x0)
            else:
                top[:, :, py, px] = window.sum(axis=2) / divisor
    return top, argmax


def distinct_values(shape, seed=0):
    """Inputs with no ties (spaced 0.1 apart), so MAX stays differentiable under the check's eps."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * 0.1


# bottom shape, options, kernel, stride, pad, ceil
CASES = [
    ((2, 3, 6, 6), "kernel_size: 2 stride: 2", (2, 2), (2, 2), (0, 0), True),
    ((1, 2, 7, 5), "kernel_size: 3 stride: 2", (3, 3), (2, 2), (0, 0), True),
    ((2, 2, 7, 7), "kernel_size: 3 stride: 2 pad: 1", (3, 3), (2, 2), (1, 1), True),
    ((2, 1, 5, 5), "kernel_size: 2 stride: 2 pad: 1", (2, 2), (2, 2), (1, 1), True),  # last-window clip
    ((1, 2, 7, 6), "kernel_size: 3 stride: 2 round_mode: FLOOR", (3, 3), (2, 2), (0, 0), False),
    ((2, 2, 8, 7), "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 1", (3, 2), (2, 1), (1, 1), True),
    ((1, 3, 5, 4), "kernel_size: 3", (3, 3), (1, 1), (0, 0), True),
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("shape, options, kernel, stride, pad, ceil", CASES)
def test_forward_and_gradient(shape, options, kernel, stride, pad, ceil, method):
    x = distinct_values(shape)
    text = pool_text(f"pool: {method} {options}")
    expected, _ = reference_pool(x, method, kernel, stride, pad, ceil)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        (top,) = forward(text, [x], dtype=dtype)
        assert top.dtype == dtype and top.shape == expected.shape
        np.testing.assert_allclose(top, expected, rtol=rtol, atol=rtol)
    assert check_gradient(text, [x], max_checks=80) > 0


def test_argmax_top():
    x = distinct_values((2, 3, 7, 6), seed=1)
    text = pool_text("pool: MAX kernel_size: 3 stride: 2 pad: 1", tops=2)
    top, argmax = forward(text, [x])
    expected, expected_argmax = reference_pool(x, "MAX", (3, 3), (2, 2), (1, 1))
    np.testing.assert_array_equal(top, expected)
    np.testing.assert_array_equal(argmax, expected_argmax)
    assert check_gradient(text, [x], max_checks=80) > 0


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(method):
    x = distinct_values((2, 3, 5, 4), seed=2)
    text = pool_text(f"pool: {method} global_pooling: true")
    (top,) = forward(text, [x])
    expected = x.max(axis=(2, 3)) if method == "MAX" else x.mean(axis=(2, 3))
    np.testing.assert_allclose(top, expected[:, :, None, None], rtol=1e-12)
    assert check_gradient(text, [x], max_checks=80) > 0


def test_ave_divisor_counts_padding_but_not_beyond_it():
    # 4x4 ones, kernel 3, stride 2, pad 1 -> 3x3 top. The corner window covers 2x2 pixels of a
    # 3x3 padded window; the last window is clipped to H + pad, so it divides by 2x2, not 3x3.
    (top,) = forward(pool_text("pool: AVE kernel_size: 3 stride: 2 pad: 1"), [np.ones((1, 1, 4, 4))])
    expected = np.array([[4 / 9, 6 / 9, 2 / 6],
                         [6 / 9, 1.0, 3 / 6],
                         [2 / 6, 3 / 6, 1 / 4]])
    np.testing.assert_allclose(top[0, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("size, options, pooled", [
    (6, "kernel_size: 3 stride: 2", 3),                      # ceil(3/2) + 1
    (6, "kernel_size: 3 stride: 2 round_mode: FLOOR", 2),
    (5, "kernel_size: 2 stride: 2 pad: 1", 3),               # ceil(5/2) + 1 = 4, clipped to 3
    (24, "kernel_size: 2 stride: 2", 12),
])
def test_caffe_output_size(size, options, pooled):
    _, _, top = make_layer(pool_text(options), [np.zeros((1, 1, size, size))])
    assert top[0].shape == (1, 1, pooled, pooled)


@pytest.mark.parametrize("options, tops, message", [
    ("pool: MAX", 1, "kernel_size"),
    ("kernel_size: 2 kernel_h: 2 kernel_w: 2", 1, "not both"),
    ("kernel_h: 2", 1, "kernel_h and kernel_w"),
    ("global_pooling: true kernel_size: 2", 1, "global_pooling"),
    ("global_pooling: true stride: 2", 1, "global_pooling needs pad 0 and stride 1"),
    ("kernel_size: 2 pad: 2", 1, "smaller than the kernel"),
    ("pool: STOCHASTIC kernel_size: 2", 1, "STOCHASTIC"),
    ("pool: AVE kernel_size: 2", 2, "only available with pool: MAX"),
    ("kernel_size: 1 stride: 2", 1, "starts outside the input"),
    ("kernel_size: 7", 1, "larger than the padded input"),
])
def test_bad_configurations(options, tops, message):
    with pytest.raises(LayerError, match=message) as info:
        make_layer(pool_text(options, tops), [np.zeros((1, 1, 6, 6))])
    assert "pool" in str(info.value)


def test_bottom_must_be_4d():
    with pytest.raises(LayerError, match="4 axes"):
        make_layer(pool_text("kernel_size: 2"), [np.zeros((2, 6, 6))])
