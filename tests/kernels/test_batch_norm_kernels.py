"""BatchNorm kernels against numpy (compiled and .py_func), in place included."""
import numpy as np
import pytest

from layerforge.kernels.batch_norm import batch_norm_backward, batch_norm_forward, batch_norm_statistics


def jit_or_python(jit, f):
    return f if jit else f.py_func


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("shape", [(5, 2, 12), (4, 3, 1), (1, 4, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_numpy(jit, shape, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 100).astype(dtype)  # a large mean: two passes keep precision
    dy = rng.standard_normal(shape).astype(dtype)
    x64 = x.astype(np.float64)
    mean, variance = np.empty(shape[1]), np.empty(shape[1])
    jit_or_python(jit, batch_norm_statistics)(x, mean, variance)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(variance, x64.var(axis=(0, 2)), rtol=1e-10)

    std = np.sqrt(variance + 1e-5)
    y = np.empty_like(x)
    jit_or_python(jit, batch_norm_forward)(x, mean, std, y)
    expected_y = (x64 - mean[:, None]) / std[:, None]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, expected_y, rtol=tol, atol=tol)

    dx = np.empty_like(dy)
    jit_or_python(jit, batch_norm_backward)(y, dy, std, dx)
    y64, dy64 = y.astype(np.float64), dy.astype(np.float64)
    expected_dx = (dy64 - dy64.mean(axis=(0, 2), keepdims=True)
                   - (dy64 * y64).mean(axis=(0, 2), keepdims=True) * y64) / std[:, None]
    np.testing.assert_allclose(dx, expected_dx, rtol=tol, atol=tol)

    jit_or_python(jit, batch_norm_backward)(y, dy, std, dy)  # in place: dx is dy
    np.testing.assert_array_equal(dy, dx)
    jit_or_python(jit, batch_norm_forward)(x, mean, std, x)  # in place: y is x
    np.testing.assert_array_equal(x, y)
