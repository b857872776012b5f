"""Things the solver watches: the smoothed training loss, reduce-on-plateau and early stopping.

Each has `observe(...)` and `state()` / `load(state)` (what a .solverstate keeps, as JSON).

Reduce-on-plateau (`plateau { monitor mode factor patience cooldown min_delta min_lr }`)
watches a scalar output of test net #0. A test improves when it beats the best so far by more
than min_delta. After `patience` tests without improvement the rate is multiplied by `factor`
(never below min_lr; a rate already at or below min_lr is left alone); then `cooldown` tests
pass before tests count again. The reduction is a scale on the policy's rate, so lr_policy
keeps working underneath. Early stopping (`early_stopping { monitor mode patience min_delta }`)
ends training after `patience` tests without improvement.
"""
import logging

import numpy as np

from layerforge.io import ConfigError
from layerforge.proto import layerforge_pb2 as pb
from layerforge.solvers.validation import fmt

log = logging.getLogger("layerforge")


class LossAverage:
    """Caffe's smoothed loss: the running mean of the last `window` iteration losses."""

    def __init__(self, window):
        self.window, self.value, self.losses, self.index = window, 0.0, [], 0

    def observe(self, loss):
        if len(self.losses) < self.window:
            self.losses.append(loss)
            self.value = (self.value * (len(self.losses) - 1) + loss) / len(self.losses)
        else:
            self.value += (loss - self.losses[self.index]) / self.window
            self.losses[self.index] = loss
            self.index = (self.index + 1) % self.window
        return self.value

    def state(self):
        return {"smoothed_loss": self.value, "losses": self.losses, "loss_index": self.index}

    def load(self, state):
        self.value, self.losses, self.index = state["smoothed_loss"], state["losses"], state["loss_index"]


def monitored_value(outputs, settings, field, source):
    """The scalar test output `settings.monitor` names."""
    value = np.asarray(outputs[settings.monitor])
    if value.size != 1:
        raise ConfigError(f"{source}: {field}.monitor \"{settings.monitor}\" must be a scalar test output "
                          f"(it has {value.size} values)")
    return float(value)


def _improved(value, best, settings):
    if best is None:
        return True
    if settings.mode == pb.MINIMIZE:
        return value < best - settings.min_delta
    return value > best + settings.min_delta


class Plateau:
    """Reduce-on-plateau over the tests' values of one output."""

    def __init__(self, settings):
        self.settings, self.best, self.wait, self.cooldown = settings, None, 0, 0

    def observe(self, value, policy_rate, scale):
        """Count one test; returns the new scale on the policy's rate (`scale` if unchanged)."""
        s = self.settings
        if self.cooldown > 0:
            self.cooldown -= 1
            self.wait = 0
        if _improved(value, self.best, s):
            self.best, self.wait = value, 0
        elif self.cooldown == 0:
            self.wait += 1
            if self.wait >= s.patience:
                scale = self._reduced(policy_rate, scale)
                self.cooldown, self.wait = s.cooldown, 0
        return scale

    def _reduced(self, policy_rate, scale):
        s, rate = self.settings, policy_rate * scale
        if rate <= s.min_lr or policy_rate <= 0:
            return scale
        new_rate = max(rate * s.factor, s.min_lr)
        log.info("Plateau: test output '%s' has not improved for %d tests (best %s); lr %s -> %s",
                 s.monitor, self.wait, fmt(self.best), fmt(rate), fmt(new_rate))
        return new_rate / policy_rate

    def state(self):
        return {"best": self.best, "wait": self.wait, "cooldown": self.cooldown}

    def load(self, state):
        self.best, self.wait, self.cooldown = state["best"], state["wait"], state["cooldown"]


class EarlyStopping:
    """Stop after `patience` tests without improvement (the best weights are not restored)."""

    def __init__(self, settings):
        self.settings, self.best, self.best_iter, self.wait = settings, None, None, 0

    def observe(self, value, it):
        """Count the test at iteration `it`; True when training should stop."""
        s = self.settings
        if _improved(value, self.best, s):
            self.best, self.best_iter, self.wait = value, it, 0
            return False
        self.wait += 1
        if self.wait < s.patience:
            return False
        log.info("Early stopping: test output '%s' has not improved for %d tests; best %s "
                 "at iteration %d", s.monitor, self.wait, fmt(self.best), self.best_iter)
        return True

    def state(self):
        return {"best": self.best, "best_iter": self.best_iter, "wait": self.wait}

    def load(self, state):
        self.best, self.best_iter, self.wait = state["best"], state["best_iter"], state["wait"]
