"""Fused solver update kernels against plain numpy, compiled and as pure Python (py_func)."""
import numpy as np
import pytest

from layerforge.kernels import updates

SETTINGS = dict(momentum=0.9, rms_decay=0.95, delta=1e-6, beta2=0.999)


def reference(rule, w, g, histories, grad_scale, decay, l1, rate):
    """(new weights, update value, new histories) in float64."""
    w, g = w.astype(np.float64), g.astype(np.float64) * grad_scale
    h = [x.astype(np.float64) for x in histories]
    g = g + decay * (np.sign(w) if l1 else w)
    m, d = SETTINGS["momentum"], SETTINGS["delta"]
    if rule == "sgd":
        h[0] = m * h[0] + rate * g
        update = h[0]
    elif rule == "nesterov":
        previous = h[0]
        h[0] = m * previous + rate * g
        update = (1 + m) * h[0] - m * previous
    elif rule == "adagrad":
        h[0] = h[0] + g * g
        update = rate * g / (np.sqrt(h[0]) + d)
    elif rule == "rmsprop":
        r = SETTINGS["rms_decay"]
        h[0] = r * h[0] + (1 - r) * g * g
        update = rate * g / (np.sqrt(h[0]) + d)
    elif rule == "adadelta":
        h[0] = m * h[0] + (1 - m) * g * g
        step = g * np.sqrt((h[1] + d) / (h[0] + d))
        h[1] = m * h[1] + (1 - m) * step * step
        update = rate * step
    else:                                              # adam; rate is the bias-corrected rate
        b2 = SETTINGS["beta2"]
        h[0] = m * h[0] + (1 - m) * g
        h[1] = b2 * h[1] + (1 - b2) * g * g
        update = rate * h[0] / (np.sqrt(h[1]) + d)
    return w - update, update, h


def call(kernel, rule, w, g, h, grad_scale, decay, l1, rate):
    s = SETTINGS
    extra = {"sgd": (s["momentum"],), "nesterov": (s["momentum"],), "adagrad": (s["delta"],),
             "rmsprop": (s["rms_decay"], s["delta"]), "adadelta": (s["momentum"], s["delta"]),
             "adam": (s["momentum"], s["beta2"], s["delta"])}[rule]
    kernel(w, g, *h, grad_scale, decay, l1, rate, *extra)


@pytest.mark.parametrize("rule", ["sgd", "nesterov", "adagrad", "rmsprop", "adadelta", "adam"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("regularization", ["none", "L2", "L1"])
@pytest.mark.parametrize("compiled", [True, False], ids=["njit", "py_func"])
def test_update_matches_numpy(rule, dtype, regularization, compiled):
    rng = np.random.default_rng(3)
    kernel = getattr(updates, f"{rule}_update")
    kernel = kernel if compiled else kernel.py_func
    w = rng.standard_normal(37).astype(dtype)
    g = rng.standard_normal(37).astype(dtype)
    slots = 2 if rule in ("adadelta", "adam") else 1
    h = [np.abs(rng.standard_normal(37)).astype(dtype) for _ in range(slots)]
    decay = 0.0 if regularization == "none" else 0.01
    args = (0.5, decay, regularization == "L1", 0.05)
    expected_w, expected_update, expected_h = reference(rule, w, g, h, *args)
    call(kernel, rule, w, g, h, *args)
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g, expected_update, **tol)          # diff holds the update value
    np.testing.assert_allclose(w, expected_w, **tol)
    for got, want in zip(h, expected_h):
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("compiled", [True, False], ids=["njit", "py_func"])
def test_sum_squares_accumulates_in_float64(compiled):
    kernel = updates.sum_squares if compiled else updates.sum_squares.py_func
    x = np.full(5, 3e19, np.float32)              # x² overflows float32, the sum must not
    assert kernel(x) == pytest.approx(5 * float(np.float32(3e19)) ** 2, rel=1e-12)
    y = np.random.default_rng(0).standard_normal(101)
    assert kernel(y) == pytest.approx(float(np.dot(y, y)), rel=1e-12)
