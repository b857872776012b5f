"""Every lr_policy against Caffe's formula, iteration by iteration."""
import math

import pytest

from layerforge.solvers import get_solver
from tests.solver.helpers import linear_net, solver_param

BASE = 0.01
POLICIES = {
    "fixed": ("", lambda it: BASE),
    "step": ("gamma: 0.5 stepsize: 7", lambda it: BASE * 0.5 ** (it // 7)),
    "exp": ("gamma: 0.97", lambda it: BASE * 0.97 ** it),
    "inv": ("gamma: 0.001 power: 0.75", lambda it: BASE * (1 + 0.001 * it) ** -0.75),
    "multistep": ("gamma: 0.1 stepvalue: 5 stepvalue: 12 stepvalue: 20",
                  lambda it: BASE * 0.1 ** sum(it >= s for s in (5, 12, 20))),
    "poly": ("power: 2 max_iter: 30", lambda it: BASE * (1 - it / 30) ** 2),
    "sigmoid": ("gamma: -0.2 stepsize: 10", lambda it: BASE / (1 + math.exp(0.2 * (it - 10)))),
}


@pytest.mark.parametrize("policy", list(POLICIES))
def test_policy_formula(policy):
    settings, formula = POLICIES[policy]
    solver = get_solver(solver_param(linear_net(), f'base_lr: {BASE} lr_policy: "{policy}" {settings}'))
    p = solver.param
    for it in range(30):
        solver.iter = it
        # Compare with the formula evaluated on the stored (float32) settings.
        expected = formula(it) * p.base_lr / BASE
        assert solver.learning_rate() == pytest.approx(expected, rel=1e-5), f"iteration {it}"


def test_training_reports_the_policy_rate_and_uses_it():
    solver = get_solver(solver_param(linear_net(), 'base_lr: 0.1 lr_policy: "step" gamma: 0.1 '
                                                   'stepsize: 2 display: 1 max_iter: 5'))
    rates = []
    solver.callbacks.append(lambda e: e["event"] == "train" and rates.append((e["iter"], e["lr"])))
    solver.step(5)
    assert [it for it, _ in rates] == [0, 1, 2, 3, 4]
    assert [r for _, r in rates] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001], rel=1e-6)
    assert solver.current_step == 2


def test_missing_policy_is_fixed():
    solver = get_solver(solver_param(linear_net(), "base_lr: 0.5"))
    solver.iter = 1000
    assert solver.learning_rate() == 0.5
