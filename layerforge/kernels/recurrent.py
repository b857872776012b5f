"""The LSTM cell step (Caffe's LSTMUnit) over one timestep of N streams.

Gate pre-activations come in Caffe's order, four blocks of H: input i, forget f, output o,
candidate g. With cont the sequence-continuation marker of each stream:
    i = σ(i'), f = cont · σ(f') (exactly 0 when cont == 0), o = σ(o'), g = tanh(g')
    c = f · c_prev + i · g,   h = o · tanh(c)
"""
import math

from numba import njit, prange

from layerforge.kernels.threads import serial_when_small


@njit(cache=True)
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@serial_when_small(lambda *args: args[1].size)   # the gate inputs
@njit(cache=True, parallel=True)
def lstm_unit_forward(c_prev, gates, cont, c, h, acts):
    """c, h (N, H) from c_prev (N, H), gates (N, 4H) and cont (N,); acts (N, 4H) receives
    σ(i'), σ(f'), σ(o'), tanh(g') for the backward pass."""
    num, hidden = c_prev.shape
    for n in prange(num):
        keep = cont[n]
        for d in range(hidden):
            i = _sigmoid(gates[n, d])
            f = _sigmoid(gates[n, hidden + d])
            o = _sigmoid(gates[n, 2 * hidden + d])
            g = math.tanh(gates[n, 3 * hidden + d])
            acts[n, d] = i
            acts[n, hidden + d] = f
            acts[n, 2 * hidden + d] = o
            acts[n, 3 * hidden + d] = g
            value = i * g
            if keep != 0:
                value += keep * f * c_prev[n, d]
            c[n, d] = value
            h[n, d] = o * math.tanh(value)


@serial_when_small(lambda *args: args[1].size)   # the gate activations
@njit(cache=True, parallel=True)
def lstm_unit_backward(c_prev, acts, cont, c, c_diff, h_diff, c_prev_diff, gates_diff):
    """Overwrite c_prev_diff (N, H) and gates_diff (N, 4H) from the gradients c_diff and
    h_diff (N, H) arriving at c and h."""
    num, hidden = c_prev.shape
    for n in prange(num):
        keep = cont[n]
        for d in range(hidden):
            i = acts[n, d]
            f = acts[n, hidden + d]
            o = acts[n, 2 * hidden + d]
            g = acts[n, 3 * hidden + d]
            tanh_c = math.tanh(c[n, d])
            c_term = c_diff[n, d] + h_diff[n, d] * o * (1.0 - tanh_c * tanh_c)
            c_prev_diff[n, d] = c_term * keep * f
            gates_diff[n, d] = c_term * g * i * (1.0 - i)
            gates_diff[n, hidden + d] = c_term * c_prev[n, d] * keep * f * (1.0 - f)
            gates_diff[n, 2 * hidden + d] = h_diff[n, d] * tanh_c * o * (1.0 - o)
            gates_diff[n, 3 * hidden + d] = c_term * i * (1.0 - g * g)
