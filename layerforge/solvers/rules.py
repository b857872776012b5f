"""Update rules: SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam (Caffe's formulas).

Each class only says how one parameter's update value comes from its gradient and
history; the loop, regularization order and snapshots live in base.Solver. The
arithmetic is in kernels/updates.py (one fused pass per parameter).
"""
import math

from layerforge.kernels import updates
from layerforge.solvers.base import Solver
from layerforge.solvers.registry import register_solver


def _check_momentum(solver):
    """A momentum of 1 or more never forgets a step: the velocity grows without bound."""
    if not 0 <= solver.param.momentum < 1:
        raise solver._error(f"momentum must be in [0, 1) for {solver.type_name} "
                            f"(got {solver.param.momentum:g}); 0.9 is usual")


@register_solver("SGD")
class SGDSolver(Solver):
    """Stochastic gradient descent with momentum: v = momentum·v + lr·g; w -= v."""

    def check_rule(self):
        _check_momentum(self)

    def apply_rule(self, data, diff, history, grad_scale, local_decay, l1, local_rate):
        updates.sgd_update(data, diff, history[0], grad_scale, local_decay, l1, local_rate,
                           self.param.momentum)


@register_solver("Nesterov")
class NesterovSolver(Solver):
    """Nesterov's accelerated gradient, Caffe's form: w -= (1 + momentum)·v' − momentum·v."""

    def check_rule(self):
        _check_momentum(self)

    def apply_rule(self, data, diff, history, grad_scale, local_decay, l1, local_rate):
        updates.nesterov_update(data, diff, history[0], grad_scale, local_decay, l1, local_rate,
                                self.param.momentum)


@register_solver("AdaGrad")
class AdaGradSolver(Solver):
    """AdaGrad: h += g²; w -= lr·g / (√h + delta)."""

    def check_rule(self):
        if self.param.momentum != 0:
            raise self._error("momentum cannot be used with AdaGrad; remove it or set momentum: 0")

    def apply_rule(self, data, diff, history, grad_scale, local_decay, l1, local_rate):
        updates.adagrad_update(data, diff, history[0], grad_scale, local_decay, l1, local_rate,
                               self.param.delta)


@register_solver("RMSProp")
class RMSPropSolver(Solver):
    """RMSProp: h = rms_decay·h + (1 − rms_decay)·g²; w -= lr·g / (√h + delta)."""

    def check_rule(self):
        if self.param.momentum != 0:
            raise self._error("momentum cannot be used with RMSProp; remove it or set momentum: 0")
        if not 0 <= self.param.rms_decay <= 1:
            raise self._error(f"rms_decay must be in [0, 1] (got {self.param.rms_decay:g})")

    def apply_rule(self, data, diff, history, grad_scale, local_decay, l1, local_rate):
        updates.rmsprop_update(data, diff, history[0], grad_scale, local_decay, l1, local_rate,
                               self.param.rms_decay, self.param.delta)


@register_solver("AdaDelta")
class AdaDeltaSolver(Solver):
    """AdaDelta with `momentum` as the decay of both running averages (gradients, updates)."""

    history_slots = 2

    def apply_rule(self, data, diff, history, grad_scale, local_decay, l1, local_rate):
        updates.adadelta_update(data, diff, history[0], history[1], grad_scale, local_decay, l1,
                                local_rate, self.param.momentum, self.param.delta)


@register_solver("Adam")
class AdamSolver(Solver):
    """Adam (momentum = β1, momentum2 = β2, delta = ε) with bias correction at t = iter + 1."""

    history_slots = 2

    def apply_rule(self, data, diff, history, grad_scale, local_decay, l1, local_rate):
        p, t = self.param, self.iter + 1
        correction = math.sqrt(1.0 - p.momentum2 ** t) / (1.0 - p.momentum ** t)
        updates.adam_update(data, diff, history[0], history[1], grad_scale, local_decay, l1,
                            local_rate * correction, p.momentum, p.momentum2, p.delta)
