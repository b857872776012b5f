"""Each update rule against a closed-form float64 numpy replay of a tiny linear net:
momentum history, L2/L1 weight decay, lr_mult/decay_mult, tied parameters, iter_size, clipping."""
import numpy as np
import pytest

from layerforge.solvers import get_solver
from tests.solver.helpers import linear_net, seq_items, solver_param

BATCH, DIM, OUT = 4, 3, 2
RULES = {
    "SGD": "momentum: 0.9",
    "Nesterov": "momentum: 0.9",
    "AdaGrad": "delta: 1e-6",
    "RMSProp": "rms_decay: 0.95 delta: 1e-6",
    "AdaDelta": "momentum: 0.95 delta: 1e-6",
    "Adam": "momentum: 0.9 momentum2: 0.999 delta: 1e-6",
}


def gradients(w, b, start, count, inputs):
    """dLoss/dW, dLoss/db for Σ over inputs of EuclideanLoss(x·Wᵀ + b, t) on items start..start+count."""
    dw, db = np.zeros_like(w), np.zeros_like(b)
    for phase in inputs:
        x = seq_items(start, count, DIM, phase)
        t = 0.5 * seq_items(start, count, OUT, phase + 1.0)
        dy = (x @ w.T + b - t) / count
        dw += dy.T @ x
        db += dy.sum(axis=0)
    return [dw, db]


def reference_update(rule, g, history, rate, p, t):
    """The update value of Caffe's rule `rule`; `history` (list of arrays) is updated in place."""
    h = history
    if rule == "SGD":
        h[0][...] = p.momentum * h[0] + rate * g
        return h[0].copy()
    if rule == "Nesterov":
        previous = h[0].copy()
        h[0][...] = p.momentum * previous + rate * g
        return (1 + p.momentum) * h[0] - p.momentum * previous
    if rule == "AdaGrad":
        h[0] += g * g
        return rate * g / (np.sqrt(h[0]) + p.delta)
    if rule == "RMSProp":
        h[0][...] = p.rms_decay * h[0] + (1 - p.rms_decay) * g * g
        return rate * g / (np.sqrt(h[0]) + p.delta)
    if rule == "AdaDelta":
        h[0][...] = p.momentum * h[0] + (1 - p.momentum) * g * g
        step = g * np.sqrt((h[1] + p.delta) / (h[0] + p.delta))
        h[1][...] = p.momentum * h[1] + (1 - p.momentum) * step * step
        return rate * step
    h[0][...] = p.momentum * h[0] + (1 - p.momentum) * g                  # Adam
    h[1][...] = p.momentum2 * h[1] + (1 - p.momentum2) * g * g
    correction = np.sqrt(1 - p.momentum2 ** t) / (1 - p.momentum ** t)
    return rate * correction * h[0] / (np.sqrt(h[1]) + p.delta)


def replay(solver, rule, steps, inputs, batch=BATCH, clip=-1.0):
    """Float64 replay of `steps` iterations from the solver's initial weights."""
    p = solver.param
    params = [blob.data.astype(np.float64) for blob in solver.net.params["ip"]]
    lr_mults, decay_mults = solver.net.lr_mults, solver.net.decay_mults
    history = [[np.zeros_like(w) for _ in range(2)] for w in params]
    for it in range(steps):
        grads = gradients(*params, it * batch, batch, inputs)
        norm = np.sqrt(sum(np.sum(g * g) for g, m in zip(grads, lr_mults) if m))   # frozen ones left out
        if 0 <= clip < norm:
            grads = [g * clip / norm for g in grads]
        for w, g, h, lr_mult, decay_mult in zip(params, grads, history, lr_mults, decay_mults):
            decay = p.weight_decay * decay_mult
            g = g + decay * (np.sign(w) if p.regularization_type == "L1" else w)
            w -= reference_update(rule, g, h, p.base_lr * lr_mult, p, it + 1)
    return params


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("tied", [False, True], ids=["single", "tied"])
def test_rule_matches_closed_form(rule, tied):
    base_lr = 1.0 if rule == "AdaDelta" else 0.05
    text = (f'type: "{rule}" base_lr: {base_lr} weight_decay: 0.01 lr_policy: "fixed" '
            f'max_iter: 5 {RULES[rule]}')
    solver = get_solver(solver_param(linear_net(BATCH, DIM, OUT, tied=tied), text))
    assert len(solver.net.learnable_params) == 2          # tied w and b are counted once
    expected = replay(solver, rule, 5, [0.0, 2.0] if tied else [0.0])
    solver.step(5)
    for blob, reference in zip(solver.net.params["ip"], expected):
        np.testing.assert_allclose(blob.data, reference, rtol=1e-5, atol=1e-6)
    if tied:
        assert solver.net.params["ip2"][0] is solver.net.params["ip"][0]


def test_l1_regularization():
    text = 'base_lr: 0.05 momentum: 0.5 weight_decay: 0.02 regularization_type: "L1" max_iter: 4'
    solver = get_solver(solver_param(linear_net(bias_decay=1), text))
    expected = replay(solver, "SGD", 4, [0.0])
    solver.step(4)
    for blob, reference in zip(solver.net.params["ip"], expected):
        np.testing.assert_allclose(blob.data, reference, rtol=1e-5, atol=1e-6)


def test_zero_lr_mult_freezes_the_parameter():
    solver = get_solver(solver_param(linear_net(bias_lr=0), "base_lr: 0.1 momentum: 0.9 max_iter: 3"))
    bias = solver.net.params["ip"][1].data.copy()
    weight = solver.net.params["ip"][0].data.copy()
    solver.step(3)
    np.testing.assert_array_equal(solver.net.params["ip"][1].data, bias)
    assert not np.allclose(solver.net.params["ip"][0].data, weight)


def test_iter_size_accumulates_like_a_bigger_batch():
    text = "base_lr: 0.1 momentum: 0.9 weight_decay: 0.01 max_iter: 4 "
    big = get_solver(solver_param(linear_net(batch=4), text))
    small = get_solver(solver_param(linear_net(batch=2), text + "iter_size: 2"))
    big.step(4)
    small.step(4)
    for a, b in zip(big.net.learnable_params, small.net.learnable_params):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("clip", [0.05, 100.0], ids=["clipped", "unclipped"])
def test_clip_gradients_scales_the_global_norm(clip):
    text = f"base_lr: 0.1 momentum: 0.9 max_iter: 3 clip_gradients: {clip}"
    solver = get_solver(solver_param(linear_net(), text))
    before = [blob.data.copy() for blob in solver.net.learnable_params]
    expected = replay(solver, "SGD", 3, [0.0], clip=clip)
    solver.step(1)
    if clip < 1:    # first step from zero history: the update is lr·lr_mult·clipped gradient
        update = [(b - blob.data) / (0.1 * m) for b, blob, m in
                  zip(before, solver.net.learnable_params, solver.net.lr_mults)]
        assert np.sqrt(sum(np.sum(u.astype(np.float64) ** 2) for u in update)) == pytest.approx(clip, rel=1e-5)
    solver.step(2)
    for blob, reference in zip(solver.net.params["ip"], expected):
        np.testing.assert_allclose(blob.data, reference, rtol=1e-5, atol=1e-6)


def test_clip_gradients_compares_the_sum_over_iter_size_as_caffe():
    """Caffe clips the gradient summed over iter_size, then divides: with iter_size 2 and
    threshold c, that is the averaged (batch of 4) gradient clipped at c / 2."""
    clip = 0.05
    text = f"base_lr: 0.1 momentum: 0.9 max_iter: 3 clip_gradients: {clip} iter_size: 2"
    small = get_solver(solver_param(linear_net(batch=2), text))
    expected = replay(small, "SGD", 3, [0.0], batch=4, clip=clip / 2)
    small.step(3)
    for blob, reference in zip(small.net.params["ip"], expected):
        np.testing.assert_allclose(blob.data, reference, rtol=1e-5, atol=1e-6)


def test_frozen_parameter_gets_no_gradient_and_stays_out_of_the_clip_norm():
    text = "base_lr: 0.1 momentum: 0.9 max_iter: 3 clip_gradients: 0.05"
    net = get_solver(solver_param(linear_net(bias_lr=0), text)).net
    net.clear_param_diffs()
    net.forward_backward()
    assert not net.params["ip"][1].diff.any() and net.params["ip"][0].diff.any()
    solver = get_solver(solver_param(linear_net(bias_lr=0), text))
    expected = replay(solver, "SGD", 3, [0.0], clip=0.05)
    solver.step(3)
    for blob, reference in zip(solver.net.params["ip"], expected):
        np.testing.assert_allclose(blob.data, reference, rtol=1e-5, atol=1e-6)
