"""Divergence guard: notice a run blowing up before its weights are garbage, and keep in memory
the last state that was truly good, so the snapshot written on divergence can be resumed.

A loss can stay finite while the weights explode (SoftmaxWithLoss saturates at 87.3), so the
guard watches the size of each update against the size of the weights: in healthy training an
update moves the weights by a small fraction of their norm (about 1 %). Updates of more than
half the weights PATIENCE iterations in a row, over which the loss did not go down, are
divergence (large steps that still lower the loss, as on a tiny problem, are not; but while
they last the guard keeps no new copy, and the run does not count as healthy). A non-finite loss, gradient, update
or weight is divergence at once (the solver checks the first two).
"""
import math

UPDATE_RATIO = 0.5    # ||update|| / ||weights|| above this is a strike ...
PATIENCE = 3          # ... and this many in a row without a lower loss are divergence
KEEP_EVERY = 100      # iterations between in-memory copies of a healthy state


class DivergenceGuard:
    def __init__(self):
        self.strikes = 0
        self.streak_loss = math.inf   # the loss when the current streak of large updates began
        self.kept = None     # (iteration, captured state) of the last healthy one

    @property
    def healthy(self):
        return self.strikes == 0

    def observe(self, update_sq, weight_sq, loss):
        """Record one iteration: its loss and its update (sums of squares over all
        parameters); True when diverging."""
        if not (math.isfinite(update_sq) and math.isfinite(weight_sq)):
            self.strikes = max(self.strikes, PATIENCE)   # this state is no longer good
            return True
        ratio = math.sqrt(update_sq / weight_sq) if weight_sq > 0 else (math.inf if update_sq else 0.0)
        if ratio <= UPDATE_RATIO:
            self.strikes = 0
            return False
        if self.strikes == 0:
            self.streak_loss = loss
        self.strikes += 1
        return self.strikes >= PATIENCE and not loss < self.streak_loss

    def keep(self, iteration, capture):
        """Keep `capture()` (the solver's state, in memory) at the start of training and every
        KEEP_EVERY iterations, while the run is healthy."""
        due = self.kept is None or (iteration % KEEP_EVERY == 0 and iteration != self.kept[0])
        if due and self.healthy:
            self.kept = (iteration, capture())
