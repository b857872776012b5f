"""The LSTM cell step against Caffe's LSTMUnit formulas in numpy (compiled and .py_func)."""
import numpy as np
import pytest

from layerforge.kernels.recurrent import lstm_unit_backward, lstm_unit_forward


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_forward(c_prev, gates, cont):
    i, f, o, g = np.split(gates, 4, axis=1)
    i, f, o, g = sigmoid(i), cont[:, None] * sigmoid(f), sigmoid(o), np.tanh(g)
    c = f * c_prev + i * g
    return c, o * np.tanh(c)


def reference_backward(c_prev, gates, cont, c_diff, h_diff):
    """Caffe's LSTMUnitLayer::Backward_cpu (its f' term written as cont·σ'(f), equal for cont in {0, 1})."""
    i, f, o, g = np.split(gates, 4, axis=1)
    i, s, o, g = sigmoid(i), sigmoid(f), sigmoid(o), np.tanh(g)
    f = cont[:, None] * s
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    c_term = c_diff + h_diff * o * (1 - tanh_c ** 2)
    gates_diff = np.concatenate([c_term * g * i * (1 - i), c_term * c_prev * cont[:, None] * s * (1 - s),
                                 h_diff * tanh_c * o * (1 - o), c_term * i * (1 - g ** 2)], axis=1)
    return c_term * f, gates_diff


@pytest.mark.parametrize("jit", [True, False], ids=["numba", "python"])
def test_lstm_unit_matches_numpy(jit):
    rng = np.random.default_rng(0)
    num, hidden = 5, 3
    c_prev = rng.uniform(-1, 1, (num, hidden))
    gates = rng.uniform(-1, 1, (num, 4 * hidden))
    cont = np.array([0, 1, 1, 0.5, 0])
    c, h, acts = (np.full((num, size), np.nan) for size in (hidden, hidden, 4 * hidden))
    (lstm_unit_forward if jit else lstm_unit_forward.py_func)(c_prev, gates, cont, c, h, acts)
    expected_c, expected_h = reference_forward(c_prev, gates, cont)
    np.testing.assert_allclose(c, expected_c, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h, expected_h, rtol=1e-13, atol=1e-15)

    c_diff, h_diff = rng.standard_normal((2, num, hidden))
    c_prev_diff, gates_diff = np.full((num, hidden), np.nan), np.full((num, 4 * hidden), np.nan)
    (lstm_unit_backward if jit else lstm_unit_backward.py_func)(c_prev, acts, cont, c, c_diff, h_diff,
                                                                c_prev_diff, gates_diff)
    expected_c_prev_diff, expected_gates_diff = reference_backward(c_prev, gates, cont, c_diff, h_diff)
    np.testing.assert_allclose(c_prev_diff, expected_c_prev_diff, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gates_diff, expected_gates_diff, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(c_prev_diff[cont == 0], 0)   # a new sequence forgets c_prev
