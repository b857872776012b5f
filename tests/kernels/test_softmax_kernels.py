"""Softmax kernels against a plain numpy reference, compiled and as pure Python."""
import numpy as np
import pytest

from layerforge.kernels.softmax import softmax_backward, softmax_forward


def reference_forward(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference_backward(y, dy):
    return y * (dy - (dy * y).sum(axis=1, keepdims=True))


def inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 5).astype(dtype), rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 1), (4, 10, 1), (3, 5, 6), (2, 1, 9)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_numpy(shape, dtype):
    x, dy = inputs(shape, dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    y = np.empty_like(x)
    softmax_forward(x, y)
    np.testing.assert_allclose(y, reference_forward(x), rtol=rtol, atol=rtol)
    dx = np.empty_like(x)
    softmax_backward(y, dy, dx)
    np.testing.assert_allclose(dx, reference_backward(y, dy), rtol=rtol, atol=rtol)


def test_forward_is_stable_for_large_inputs():
    x = np.array([[[1000.0], [1001.0], [-1000.0]]])
    y = np.empty_like(x)
    softmax_forward(x, y)
    np.testing.assert_allclose(y, reference_forward(x))
    assert np.all(np.isfinite(y))


def test_in_place():
    x, dy = inputs((3, 4, 5), np.float64)
    expected_y = reference_forward(x)
    softmax_forward(x, x)
    np.testing.assert_allclose(x, expected_y, rtol=1e-12)
    expected_dx = reference_backward(x, dy)
    softmax_backward(x, dy, dy)
    np.testing.assert_allclose(dy, expected_dx, rtol=1e-12, atol=1e-15)


def test_pure_python_path():
    x, dy = inputs((2, 3, 4), np.float64)
    y = np.empty_like(x)
    softmax_forward.py_func(x, y)
    np.testing.assert_allclose(y, reference_forward(x), rtol=1e-12)
    dx = np.empty_like(x)
    softmax_backward.py_func(y, dy, dx)
    np.testing.assert_allclose(dx, reference_backward(y, dy), rtol=1e-12, atol=1e-15)
