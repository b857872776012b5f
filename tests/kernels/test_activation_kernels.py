"""Activation kernels against plain numpy references: compiled and as pure Python, float32 and float64, aliased."""
import numpy as np
import pytest

from layerforge.kernels import activations as K

SLOPE, ALPHA = 0.1, 1.5


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def elu(x):
    return np.where(x > 0, x, ALPHA * np.expm1(x))


# name -> (call(kernel, x, dy, out), reference(x, dy), the input `out` may alias: "x" or "dy")
ELEMENTWISE = {
    "relu_forward": (lambda k, x, dy, out: k(x, SLOPE, out),
                     lambda x, dy: np.where(x > 0, x, SLOPE * x), "x"),
    "relu_backward": (lambda k, x, dy, out: k(x, dy, SLOPE, out),
                      lambda x, dy: np.where(x > 0, dy, SLOPE * dy), "dy"),
    "sigmoid_backward": (lambda k, x, dy, out: k(sigmoid(x).astype(x.dtype), dy, out),
                         lambda x, dy: dy * sigmoid(x) * (1 - sigmoid(x)), "dy"),
    "tanh_backward": (lambda k, x, dy, out: k(np.tanh(x).astype(x.dtype), dy, out),
                      lambda x, dy: dy * (1 - np.tanh(x) ** 2), "dy"),
    "elu_forward": (lambda k, x, dy, out: k(x, ALPHA, out), lambda x, dy: elu(x), "x"),
    "elu_backward": (lambda k, x, dy, out: k(x, elu(x).astype(x.dtype), dy, ALPHA, out),
                     lambda x, dy: np.where(x > 0, dy, dy * (elu(x) + ALPHA)), "dy"),
}


def inputs(size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 3, size) * rng.choice([-1, 1], size)  # away from the kink at 0
    return x.astype(dtype), rng.standard_normal(size).astype(dtype)


def tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("size", [1, 7, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_kernels_match_numpy(name, size, dtype):
    call, reference, _ = ELEMENTWISE[name]
    x, dy = inputs(size, dtype)
    out = np.empty_like(x)
    call(getattr(K, name), x, dy, out)
    want = reference(x.astype(np.float64), dy.astype(np.float64))
    np.testing.assert_allclose(out, want, **tolerance(dtype))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_kernels_as_pure_python(name):
    call, reference, _ = ELEMENTWISE[name]
    x, dy = inputs(9, np.float64)
    out = np.empty_like(x)
    call(getattr(K, name).py_func, x, dy, out)
    np.testing.assert_allclose(out, reference(x, dy), **tolerance(np.float64))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_kernels_may_write_over_their_input(name):
    call, reference, aliased = ELEMENTWISE[name]
    x, dy = inputs(50, np.float64)
    want = reference(x, dy)
    out = x if aliased == "x" else dy
    call(getattr(K, name), x.copy() if aliased == "dy" else x, dy, out)
    np.testing.assert_allclose(out, want, **tolerance(np.float64))


def prelu_reference(x, slope, dy):
    a = slope.reshape(1, -1, 1)
    y = np.where(x > 0, x, a * x)
    dx = np.where(x > 0, dy, a * dy)
    slope_diff = np.where(x > 0, 0, dy * x).sum(axis=(0, 2))
    return y, dx, slope_diff


def prelu_inputs(shape, dtype, seed=0):
    x, dy = (a.reshape(shape) for a in inputs(int(np.prod(shape)), dtype, seed))
    slope = np.random.default_rng(seed + 1).uniform(-0.5, 0.5, shape[1]).astype(dtype)
    return x, slope, dy


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 5), (4, 1, 7), (1, 6, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("compiled", [True, False])
def test_prelu_kernels_match_numpy(shape, dtype, compiled):
    forward = K.prelu_forward if compiled else K.prelu_forward.py_func
    backward = K.prelu_backward if compiled else K.prelu_backward.py_func
    x, slope, dy = prelu_inputs(shape, dtype)
    want_y, want_dx, want_slope_diff = prelu_reference(*(a.astype(np.float64) for a in (x, slope, dy)))
    y, dx = np.empty_like(x), np.empty_like(x)
    forward(x, slope, y)
    np.testing.assert_allclose(y, want_y, **tolerance(dtype))
    slope_diff = np.full(shape[1], 2.0)  # the kernel adds into it
    backward(x, dy, slope, dx, slope_diff, True)
    np.testing.assert_allclose(dx, want_dx, **tolerance(dtype))
    np.testing.assert_allclose(slope_diff, 2.0 + want_slope_diff, **tolerance(dtype))


def test_prelu_backward_without_propagate_down_leaves_dx_alone():
    x, slope, dy = prelu_inputs((3, 4, 5), np.float64)
    dx = np.full_like(x, 9.0)
    slope_diff = np.zeros(4)
    K.prelu_backward(x, dy, slope, dx, slope_diff, False)
    np.testing.assert_array_equal(dx, 9.0)
    np.testing.assert_allclose(slope_diff, prelu_reference(x, slope, dy)[2], rtol=1e-12)


def test_prelu_kernels_in_place_and_with_a_shared_slope():
    x, _, dy = prelu_inputs((3, 4, 5), np.float64)
    shared = np.broadcast_to(np.array([0.3]), (4,))  # read-only view, as the layer passes it
    want_y, want_dx, _ = prelu_reference(x, np.full(4, 0.3), dy)
    saved = x.copy()
    K.prelu_forward(x, shared, x)
    np.testing.assert_allclose(x, want_y, rtol=1e-12)
    K.prelu_backward(saved, dy, shared, dy, np.zeros(4), True)
    np.testing.assert_allclose(dy, want_dx, rtol=1e-12)
