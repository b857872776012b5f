"""Fused solver updates: one pass per parameter regularizes the gradient, updates the
history and applies the step (Caffe's Regularize + ComputeUpdateValue + Net::Update).

Every kernel takes flat arrays of one parameter: `data` (the weights), `diff` (the raw
gradient on entry, the applied update value on exit, as Caffe leaves it) and the rule's
history arrays. The gradient a rule sees is

    g = diff * grad_scale + local_decay * w        (L2)
    g = diff * grad_scale + local_decay * sign(w)  (L1, `l1` true)

where grad_scale folds in 1/iter_size and gradient clipping. Each element is computed in
float64 and stored in the arrays' dtype; `data -= diff` uses the stored update value.
The loops are serial: an update is memory-bound and a few hundred thousand elements,
so threads on two cores do not pay for their start-up.
"""
import numpy as np
from numba import njit


@njit(cache=True, fastmath={"reassoc"})
def sum_squares(x):
    """Σ x² accumulated in float64 (the global L2 norm for clip_gradients; never overflows float32).

    The sum may be reordered so that it vectorizes (5x faster on ip1's 400 000 weights)."""
    total = 0.0
    for i in range(x.size):
        value = np.float64(x[i])
        total += value * value
    return total


@njit(cache=True)
def _gradient(w, g, grad_scale, local_decay, l1):
    g = np.float64(g) * grad_scale
    if l1:
        return g + local_decay * np.sign(np.float64(w))
    return g + local_decay * np.float64(w)


@njit(cache=True)
def sgd_update(data, diff, history, grad_scale, local_decay, l1, local_rate, momentum):
    """v = momentum·v + local_rate·g; w -= v."""
    for i in range(data.size):
        g = _gradient(data[i], diff[i], grad_scale, local_decay, l1)
        history[i] = momentum * history[i] + local_rate * g
        diff[i] = history[i]
        data[i] -= diff[i]


@njit(cache=True)
def nesterov_update(data, diff, history, grad_scale, local_decay, l1, local_rate, momentum):
    """v' = momentum·v + local_rate·g; w -= (1 + momentum)·v' − momentum·v."""
    for i in range(data.size):
        g = _gradient(data[i], diff[i], grad_scale, local_decay, l1)
        previous = np.float64(history[i])
        history[i] = momentum * previous + local_rate * g
        diff[i] = (1.0 + momentum) * history[i] - momentum * previous
        data[i] -= diff[i]


@njit(cache=True)
def adagrad_update(data, diff, history, grad_scale, local_decay, l1, local_rate, delta):
    """h += g²; w -= local_rate·g / (√h + delta)."""
    for i in range(data.size):
        g = _gradient(data[i], diff[i], grad_scale, local_decay, l1)
        history[i] += g * g
        diff[i] = local_rate * g / (np.sqrt(np.float64(history[i])) + delta)
        data[i] -= diff[i]


@njit(cache=True)
def rmsprop_update(data, diff, history, grad_scale, local_decay, l1, local_rate, rms_decay, delta):
    """h = rms_decay·h + (1 − rms_decay)·g²; w -= local_rate·g / (√h + delta)."""
    for i in range(data.size):
        g = _gradient(data[i], diff[i], grad_scale, local_decay, l1)
        history[i] = rms_decay * history[i] + (1.0 - rms_decay) * g * g
        diff[i] = local_rate * g / (np.sqrt(np.float64(history[i])) + delta)
        data[i] -= diff[i]


@njit(cache=True)
def adadelta_update(data, diff, grad_history, update_history, grad_scale, local_decay, l1,
                    local_rate, momentum, delta):
    """E[g²] = m·E[g²] + (1−m)·g²; dx = g·√((E[dx²] + delta) / (E[g²] + delta));
    E[dx²] = m·E[dx²] + (1−m)·dx²; w -= local_rate·dx."""
    for i in range(data.size):
        g = _gradient(data[i], diff[i], grad_scale, local_decay, l1)
        grad_history[i] = momentum * grad_history[i] + (1.0 - momentum) * g * g
        step = g * np.sqrt((update_history[i] + delta) / (np.float64(grad_history[i]) + delta))
        update_history[i] = momentum * update_history[i] + (1.0 - momentum) * step * step
        diff[i] = local_rate * step
        data[i] -= diff[i]


@njit(cache=True)
def adam_update(data, diff, m, v, grad_scale, local_decay, l1, corrected_rate, beta1, beta2, delta):
    """m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; w -= corrected_rate·m / (√v + delta),
    where corrected_rate = local_rate·√(1−β2^t) / (1−β1^t) carries the bias correction."""
    for i in range(data.size):
        g = _gradient(data[i], diff[i], grad_scale, local_decay, l1)
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        diff[i] = corrected_rate * m[i] / (np.sqrt(np.float64(v[i])) + delta)
        data[i] -= diff[i]
