"""BatchNorm kernels against numpy (compiled and .py_func), in place included."""
import numpy as np
import pytest

from layerforge.kernels.batch_norm import batch_norm_backward, batch_norm_train_forward


def jit_or_python(jit, f):
    return f.kernel if jit else f.py_func


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("shape", [(5, 2, 12), (4, 3, 1), (1, 4, 7), (3, 5, 40)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_numpy(jit, shape, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 100).astype(dtype)  # a large mean: the shifted sums keep precision
    dy = rng.standard_normal(shape).astype(dtype)
    x64 = x.astype(np.float64)
    eps = 1e-5
    mean, variance, std = np.empty(shape[1]), np.empty(shape[1]), np.empty(shape[1])
    x_norm, y = np.empty_like(x), np.empty_like(x)
    jit_or_python(jit, batch_norm_train_forward)(x, eps, mean, variance, std, x_norm, y)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(variance, x64.var(axis=(0, 2)), rtol=1e-10)
    np.testing.assert_allclose(std, np.sqrt(x64.var(axis=(0, 2)) + eps), rtol=1e-10)
    expected_y = (x64 - mean[:, None]) / std[:, None]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected_y, rtol=tol, atol=tol)
    np.testing.assert_array_equal(x_norm, y)

    dx = np.empty_like(dy)
    jit_or_python(jit, batch_norm_backward)(y, dy, std, dx)
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    expected_dx = (dy64 - dy64.mean(axis=(0, 2), keepdims=True)
                   - (dy64 * y64).mean(axis=(0, 2), keepdims=True) * y64) / std[:, None]
    np.testing.assert_allclose(dx, expected_dx, rtol=tol, atol=tol)

    jit_or_python(jit, batch_norm_backward)(y, dy, std, dy)  # in place: dx is dy
    np.testing.assert_array_equal(dy, dx)
    in_place_norm = np.empty_like(x)
    jit_or_python(jit, batch_norm_train_forward)(x, eps, mean, variance, std, in_place_norm, x)  # y is x
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(in_place_norm, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_variance_of_a_constant_channel_is_zero(dtype):
    x = np.full((3, 2, 5), 7.25, dtype)
    mean, variance, std = np.empty(2), np.empty(2), np.empty(2)
    y = np.empty_like(x)
    batch_norm_train_forward(x, 1e-5, mean, variance, std, np.empty_like(x), y)
    np.testing.assert_array_equal(mean, 7.25)
    np.testing.assert_array_equal(variance, 0)
    np.testing.assert_array_equal(y, 0)


def test_wrapper_runs_large_arrays_in_parallel():
    """Above the serial threshold the wrapper calls the parallel kernel; results match numpy."""
    rng = np.random.default_rng(1)
    x = rng.normal(-4, 0.5, (16, 8, 1000)).astype(np.float32)
    mean, variance, std = np.empty(8), np.empty(8), np.empty(8)
    x_norm, y = np.empty_like(x), np.empty_like(x)
    batch_norm_train_forward(x, 1e-5, mean, variance, std, x_norm, y)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(variance, x64.var(axis=(0, 2)), rtol=1e-10)
    dx = np.empty_like(y)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    batch_norm_backward(y, dy, std, dx)
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    expected_dx = (dy64 - dy64.mean(axis=(0, 2), keepdims=True)
                   - (dy64 * y64).mean(axis=(0, 2), keepdims=True) * y64) / std[:, None]
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-5, atol=1e-5)
