"""LRN kernels against a direct numpy transcription of Caffe's windows (compiled and .py_func)."""
import numpy as np
import pytest

from layerforge.kernels.lrn import (lrn_across_channels_backward, lrn_across_channels_forward,
                                    lrn_within_channel_backward, lrn_within_channel_forward)


def across_reference(x, size, alpha, beta, k, dy):
    """x, dy: (N, C, P). Returns scale, y, dx with each window summed directly."""
    channels = x.shape[1]
    pad = (size - 1) // 2
    window = [slice(max(c - pad, 0), min(c + pad + 1, channels)) for c in range(channels)]
    scale = np.stack([k + alpha / size * (x[:, w] ** 2).sum(axis=1) for w in window], axis=1)
    y = x * scale ** -beta
    ratio = dy * y / scale
    sums = np.stack([ratio[:, w].sum(axis=1) for w in window], axis=1)
    return scale, y, dy * scale ** -beta - 2 * alpha * beta / size * x * sums


def box(values, size):
    pad = (size - 1) // 2
    out = np.zeros_like(values)
    height, width = values.shape[1:]
    for h in range(height):
        for w in range(width):
            out[:, h, w] = values[:, max(h - pad, 0):h + pad + 1, max(w - pad, 0):w + pad + 1].sum(axis=(1, 2))
    return out


def within_reference(x, size, alpha, beta, dy):
    scale = 1 + alpha / size ** 2 * box(x ** 2, size)
    y = x * scale ** -beta
    return scale, y, dy * scale ** -beta - 2 * alpha * beta / size ** 2 * x * box(dy * y / scale, size)


def pick(jit, f):
    return f if jit else f.py_func


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("shape, size", [((2, 7, 15), 5), ((1, 3, 4), 5), ((2, 10, 600), 3), ((1, 7, 2), 15),
                                         ((1, 1, 3), 1)])
@pytest.mark.parametrize("beta", [0.75, 0.6])   # 0.75 has its own power: 1 / sqrt(s sqrt(s))
def test_across_channels(jit, shape, size, beta):
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    scale, y = np.empty(shape), np.empty(shape)
    pick(jit, lrn_across_channels_forward)(x, size, 0.7, beta, 2.0, scale, y)
    want_scale, want_y, want_dx = across_reference(x, size, 0.7, beta, 2.0, dy)
    np.testing.assert_allclose(scale, want_scale, rtol=1e-12)
    np.testing.assert_allclose(y, want_y, rtol=1e-12)
    dx = np.empty(shape)
    pick(jit, lrn_across_channels_backward)(x, y, scale, dy, size, 0.7, beta, dx)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("shape, size", [((3, 5, 6), 3), ((2, 4, 4), 5), ((1, 2, 9), 7), ((2, 3, 3), 1)])
@pytest.mark.parametrize("beta", [0.6, 0.75])
def test_within_channel(jit, shape, size, beta):
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    scale, y = np.empty(shape), np.empty(shape)
    pick(jit, lrn_within_channel_forward)(x, size, 1.5, beta, scale, y)
    want_scale, want_y, want_dx = within_reference(x, size, 1.5, beta, dy)
    np.testing.assert_allclose(scale, want_scale, rtol=1e-12)
    np.testing.assert_allclose(y, want_y, rtol=1e-12)
    dx = np.empty(shape)
    pick(jit, lrn_within_channel_backward)(x, y, scale, dy, size, 1.5, beta, dx)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-10, atol=1e-12)


def test_float32_arrays():
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((2, 6, 10)).astype(np.float32), rng.standard_normal((2, 6, 10)).astype(np.float32)
    scale, y, dx = (np.empty(x.shape, np.float32) for _ in range(3))
    lrn_across_channels_forward(x, 5, 1.0, 0.75, 1.0, scale, y)
    lrn_across_channels_backward(x, y, scale, dy, 5, 1.0, 0.75, dx)
    want_scale, want_y, want_dx = across_reference(x.astype(np.float64), 5, 1.0, 0.75, 1.0, dy.astype(np.float64))
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-5, atol=1e-6)
