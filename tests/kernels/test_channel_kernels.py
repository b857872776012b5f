"""Per-channel affine kernels (Scale, BatchNorm) against numpy, compiled and .py_func, in place included."""
import numpy as np
import pytest

from layerforge.kernels.channels import channel_affine, channel_affine_backward, channel_affine_keeping_input


def jit_or_python(jit, f):
    return f.kernel if jit else f.py_func


def arrays(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    scale = rng.uniform(0.5, 1.5, shape[1]).astype(dtype)
    shift = rng.uniform(-0.5, 0.5, shape[1]).astype(dtype)
    return x, scale, shift


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("shape", [(2, 3, 20), (1, 1, 7), (4, 5, 1), (1, 6, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_numpy(jit, shape, dtype):
    x, scale, shift = arrays(shape, dtype)
    expected = x * scale[:, None] + shift[:, None]  # numpy: multiply, round, add
    y = np.empty_like(x)
    jit_or_python(jit, channel_affine)(x, scale, shift, y)
    np.testing.assert_array_equal(y, expected)

    kept, y2 = np.empty_like(x), np.empty_like(x)
    jit_or_python(jit, channel_affine_keeping_input)(x, scale, shift, y2, kept)
    np.testing.assert_array_equal(y2, expected)
    np.testing.assert_array_equal(kept, x)

    in_place = x.copy()
    jit_or_python(jit, channel_affine_keeping_input)(in_place, scale, shift, in_place, kept)  # y is x
    np.testing.assert_array_equal(in_place, expected)
    np.testing.assert_array_equal(kept, x)
    in_place = x.copy()
    jit_or_python(jit, channel_affine)(in_place, scale, shift, in_place)
    np.testing.assert_array_equal(in_place, expected)


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
@pytest.mark.parametrize("shape", [(2, 3, 20), (1, 1, 7), (4, 5, 1), (1, 6, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_matches_numpy(jit, shape, dtype):
    x, scale, _ = arrays(shape, dtype)
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    scale_sums, shift_sums = np.empty(shape[:2]), np.empty(shape[:2])
    dx = np.empty_like(x)
    jit_or_python(jit, channel_affine_backward)(x, dy, scale, scale_sums, shift_sums, dx, True)
    np.testing.assert_allclose(scale_sums, (dy64 * x64).sum(axis=2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(shift_sums, dy64.sum(axis=2), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(dx, dy * scale[:, None])

    untouched = np.full_like(x, 3.0)
    jit_or_python(jit, channel_affine_backward)(x, dy, scale, scale_sums, shift_sums, untouched, False)
    np.testing.assert_array_equal(untouched, 3.0)
    np.testing.assert_allclose(shift_sums, dy64.sum(axis=2), rtol=1e-12, atol=1e-12)

    in_place = dy.copy()  # dx is dy
    jit_or_python(jit, channel_affine_backward)(x, in_place, scale, scale_sums, shift_sums, in_place, True)
    np.testing.assert_array_equal(in_place, dx)
    np.testing.assert_allclose(scale_sums, (dy64 * x64).sum(axis=2), rtol=1e-12, atol=1e-12)


def test_wrappers_run_large_arrays_in_parallel():
    x, scale, shift = arrays((8, 16, 1000), np.float32, seed=2)
    y = np.empty_like(x)
    channel_affine(x, scale, shift, y)
    np.testing.assert_array_equal(y, x * scale[:, None] + shift[:, None])
    dy = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    scale_sums, shift_sums = np.empty((8, 16)), np.empty((8, 16))
    channel_affine_backward(x, dy, scale, scale_sums, shift_sums, y, True)
    np.testing.assert_allclose(scale_sums, (dy.astype(np.float64) * x).sum(axis=2), rtol=1e-10)
    np.testing.assert_array_equal(y, dy * scale[:, None])
