"""Solver: the training loop every update rule shares (Caffe's Solver and SGDSolver base).

One iteration: zero the parameter diffs, iter_size × forward+backward, clip the summed
gradients (clip_gradients: their global L2 norm over the parameters with lr_mult != 0), scale
them by 1/iter_size, regularize and update each parameter with the rule of the subclass (rules.py) at the local
rate lr·lr_mult. A tied parameter is one Blob, updated once with its summed gradient.

Control: `solve()` handles SIGINT, SIGTERM and SIGHUP (main thread only; batch schedulers
and a dropped ssh session send the last two): the first finishes the current iteration,
snapshots and returns with `stop_reason` "sigint", "sigterm" or "sighup"; a second raises
KeyboardInterrupt.
`request_stop(reason)` does the same from a callback. Divergence — a non-finite loss or
gradient, or, several iterations in a row, a rising loss with updates of the weights' own
size (guard.py) —
snapshots the last state that was truly good (the current one when the run was healthy until
this iteration, else the healthy state the guard kept in memory) and raises TrainingDiverged
naming that iteration and the first layer whose top went non-finite.

Data parallelism: launched by `mpiexec -n N` (or any MPI launcher), every rank builds the
same nets and starts from rank 0's state; batch_size is per rank (distributed.py shards the
data); after backward the gradients are averaged over the ranks, so every rank applies the
same update. Ranks agree on stopping (a signal on any rank, a non-finite loss on any rank)
in that same Allreduce, so they always stop at the same iteration; test outputs are the mean
over the ranks' shards; only rank 0 writes snapshots.

Callbacks (`solver.callbacks.append(f)`) receive dicts: {"event": "iteration_start", "iter"}
before an iteration's forward/backward; {"event": "gradients_ready", "iter"} when its
gradients are ready, before the update (pycaffe's on_start / on_gradients_ready);
{"event": "iteration", "iter", "loss"} after every update; {"event": "train", "iter",
"loss", "smoothed_loss", "lr", "outputs"} at display steps; {"event": "test", "iter", "net",
"outputs", "loss"}; {"event": "snapshot", "iter", "caffemodel", "solverstate"};
{"event": "stop", "iter", "reason"} with reason max_iter, sigint, early_stopping, diverged
or a request_stop reason.

This module is over 400 lines because the loop, its data-parallel agreement and its signal
handling all act on one iteration's state; policies, monitors, checkpoints, the divergence
guard, validation and the update rules live in their own modules.
"""
import contextlib
import logging
import math
import os
import signal
import threading

import numpy as np

from layerforge import distributed
from layerforge.io import ConfigError
from layerforge.kernels.threads import blas_on_one_thread
from layerforge.kernels.updates import sum_squares
from layerforge.layer import LayerError
from layerforge.solvers import checkpoint, lr_policies
from layerforge.solvers.guard import DivergenceGuard
from layerforge.solvers.monitors import EarlyStopping, LossAverage, Plateau, monitored_value
from layerforge.solvers.nets import build_nets
from layerforge.solvers.validation import check_monitors, check_param, fmt, read_solver, weight_paths

log = logging.getLogger("layerforge")
STOP_SIGNALS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}
DEFAULT_SEED = 0     # a negative random_seed (the default) still gives repeatable runs


class TrainingDiverged(RuntimeError):
    """The loss or a gradient went NaN/Inf; `layer` is the first layer with a non-finite top."""

    def __init__(self, message, layer=None, snapshot=None):
        super().__init__(message)
        self.layer, self.snapshot = layer, snapshot


class Solver:
    """Training loop over a train net and its test nets; subclasses supply `apply_rule`."""

    type_name = None
    history_slots = 1        # history arrays per parameter (Caffe's history_ blobs)

    def __init__(self, solver, weights=None):
        self.param, self.source, folder = read_solver(solver)
        check_param(self.param, self.source)
        self.check_rule()
        p = self.param
        seed = p.random_seed if p.random_seed >= 0 else DEFAULT_SEED
        weights = weight_paths(p.weights if weights is None else weights)
        self.world = distributed.start()
        self.net, self.test_nets = build_nets(p, self.source, folder, seed, weights)
        self._check_trainable()
        check_monitors(p, self.test_nets, self.source)
        self.iter = 0
        self.lr_scale = 1.0
        self.history = [np.zeros_like(blob.data) for _ in range(self.history_slots)
                        for blob in self.net.learnable_params]
        self.callbacks = []
        self.loss_average = LossAverage(p.average_loss)
        self.plateau, self.early_stopping = Plateau(p.plateau), EarlyStopping(p.early_stopping)
        self._stop_reason = None
        self._signalled = None       # in a data-parallel run: a signal waiting for the ranks to agree
        self.guard = DivergenceGuard()
        self._last_snapshot_iter = None
        self._last_snapshot = None      # (caffemodel, solverstate) of the last snapshot written or resumed
        self._prefix_held = 0
        self.snapshot_prefix = checkpoint.snapshot_prefix(p, self.source, folder)
        self._broadcast_state()

    def _error(self, message):
        return ConfigError(f"{self.source}: {message}")

    def _check_trainable(self):
        """An empty train net, or one with neither a loss nor a learnable parameter, would
        "train" nothing and write an empty .caffemodel: an error instead."""
        where = f"the train net '{self.net.name}' ({self.net.source})"
        if not self.net.entries:
            raise self._error(f"{where} has no layers in phase TRAIN")
        if not self.net.loss_weights and not self.net.learnable_params:
            raise self._error(f"{where} has no loss (a loss layer or a loss_weight) and no learnable "
                              f"parameter: there is nothing to train")

    def check_rule(self):
        """Subclasses reject settings their update rule cannot use."""

    def apply_rule(self, data, diff, history, grad_scale, local_decay, l1, local_rate):
        """Regularize, update `history` and apply one parameter's update (flat arrays)."""
        raise NotImplementedError

    @property
    def nets(self):
        return [self.net] + self.test_nets

    @property
    def stop_reason(self):
        """Why the last solve() stopped early (e.g. "sigterm", "early_stopping"), else None."""
        return self._stop_reason

    @property
    def smoothed_loss(self):
        return self.loss_average.value

    @property
    def current_step(self):
        """Caffe's current_step (steps taken by a step / multistep policy) at this iteration."""
        return lr_policies.current_step(self.param, self.iter)

    def learning_rate(self):
        """The rate of the current iteration: the lr_policy's value times the plateau scale."""
        return lr_policies.rate(self.param, self.iter) * self.lr_scale

    # ------------------------------------------------------------ training loop

    def _emit(self, event):
        for callback in self.callbacks:
            callback(event)

    def request_stop(self, reason="requested"):
        """Stop after the current iteration (solve() then snapshots). In a data-parallel run,
        call it on every rank (as callbacks are), so all ranks stop together."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def step(self, iters):
        """Run `iters` iterations (fewer if a stop is requested)."""
        with blas_on_one_thread():     # once around the loop; the nets' own scopes then nest
            self._iterate(iters)

    def _iterate(self, iters):
        stop_iter = self.iter + iters
        p = self.param
        while self.iter < stop_iter and self._stop_reason is None:
            if p.test_interval and self.iter % p.test_interval == 0 and (self.iter > 0 or p.test_initialization):
                self._test_all()
                if self._stop_reason is not None:
                    break
            self.guard.keep(self.iter, lambda: checkpoint.capture(self))
            self._emit({"event": "iteration_start", "iter": self.iter})
            try:
                loss = self._forward_backward()
            except LayerError as err:
                self._bad_batch(err)
            if self.world is not None:
                self._average_over_ranks(loss)
            self.loss_average.observe(loss)
            rate = self.learning_rate()
            if p.lr_policy == "multistep" and self.current_step != lr_policies.current_step(p, self.iter - 1):
                log.info("MultiStep Status: Iteration %d, step = %d", self.iter, self.current_step)
            if p.display and self.iter % p.display == 0:
                self._display(loss, rate)
            self._emit({"event": "gradients_ready", "iter": self.iter})
            self.apply_update(rate, loss)
            self.iter += 1
            self._emit({"event": "iteration", "iter": self.iter, "loss": loss})
            if p.snapshot and self.iter % p.snapshot == 0:
                self.snapshot()

    def solve(self, resume=None):
        """Train until max_iter (or a stop); `resume` is a .solverstate to continue from."""
        p = self.param
        log.info("Solving %s", self.net.name)
        log.info("Learning Rate Policy: %s", p.lr_policy or "fixed")
        self._stop_reason = None
        if resume is not None:
            self.restore(resume)
        with self.hold_prefix(), self._signal_handlers():
            self.step(p.max_iter - self.iter)
            reason = self._stop_reason or "max_iter"
            if (p.snapshot_after_train or reason in STOP_SIGNALS) and self._last_snapshot_iter != self.iter:
                self.snapshot()
        if self._stop_reason is not None:
            log.info("Optimization stopped early (%s).", reason)
            self._emit({"event": "stop", "iter": self.iter, "reason": reason})
            return
        if p.display and self.iter % p.display == 0:
            self.net.forward()
            self.loss_average.observe(self.net.loss)
            self._display(self.net.loss, self.learning_rate())
        if p.test_interval and self.iter % p.test_interval == 0:
            self._test_all()
        log.info("Optimization Done.")
        self._emit({"event": "stop", "iter": self.iter, "reason": "max_iter"})

    @contextlib.contextmanager
    def hold_prefix(self):
        """Lock the snapshot prefix for this run (nestable; rank 0 only): a second run with
        the same prefix fails instead of mixing its files with this one's."""
        if self._prefix_held or distributed.shard()[0] != 0:
            self._prefix_held += 1
            try:
                yield
            finally:
                self._prefix_held -= 1
            return
        with checkpoint.prefix_lock(self.snapshot_prefix):
            self._prefix_held = 1
            try:
                yield
            finally:
                self._prefix_held = 0

    @contextlib.contextmanager
    def _signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        names = {number: name for name, number in STOP_SIGNALS.items()}

        def handler(signum, frame):
            if self._stop_reason in STOP_SIGNALS or self._signalled is not None:
                raise KeyboardInterrupt
            if self.world is None:
                self.request_stop(names[signum])
            else:
                self._signalled = names[signum]
            log.warning("%s: finishing iteration %d, then snapshotting and stopping (a second "
                        "signal aborts at once)", signal.Signals(signum).name, self.iter)

        previous = {number: signal.signal(number, handler) for number in names}
        try:
            yield
        finally:
            for number, old in previous.items():
                signal.signal(number, old)

    def _forward_backward(self):
        self.net.clear_param_diffs()
        total = 0.0
        for _ in range(self.param.iter_size):
            loss = self.net.forward_backward()
            if not math.isfinite(loss) and self.world is None:   # ranks decide together
                layer = self.net.first_nonfinite_layer()
                where = (f"the first layer whose top went non-finite is '{layer}'" if layer else
                         "no layer top is non-finite (the loss sum overflowed)")
                self._diverge(f"Iteration {self.iter}: the loss is {loss}; {where}", layer)
            total += loss
        return total / self.param.iter_size

    def _bad_batch(self, err):
        """A layer refused this iteration's batch (e.g. a label out of range): snapshot the state
        before it (this iteration's update is not applied) and raise a ConfigError naming the
        iteration and, when the layer says which item, the record it came from."""
        records = [record for layer in self.net.layers.values() if hasattr(layer, "batch_records")
                   for record in layer.batch_records(getattr(err, "item", -1))]
        where = f" (batch item {err.item}: {', '.join(records)})" if records else ""
        saved = ""
        if self.world is None:
            model_path, state_path = self.snapshot()
            saved = (f"; the weights before it are saved in {model_path} and {state_path} (resuming "
                     f"continues after this batch)")
        self._emit({"event": "stop", "iter": self.iter, "reason": "bad_input"})
        raise ConfigError(f"Iteration {self.iter}: {err}{where}{saved}") from err

    def _diverge(self, message, layer):
        """Snapshot the last truly good state and raise TrainingDiverged."""
        if not self.guard.healthy:    # else good until this iteration, whose update is not applied
            checkpoint.put_back(self, self.guard.kept[1])
        good, paths = self.iter, self.snapshot()
        self._emit({"event": "stop", "iter": self.iter, "reason": "diverged"})
        raise TrainingDiverged(f"{message}. The last good state (iteration {good}) is saved in "
                               f"{paths[0]} and {paths[1]}; resume from it with a lower base_lr "
                               f"or with clip_gradients.", layer, paths)

    def _broadcast_state(self):
        """In a data-parallel run every rank continues from rank 0's parameters, layer state
        (e.g. Decode's centroids) and update history."""
        if self.world is None:
            return
        blobs = {id(b): b for net in self.nets for layer in net.layers.values() for b in layer.blobs}
        self.world.broadcast([b.data for b in blobs.values()] + self.history)

    def _average_over_ranks(self, loss):
        """Average the gradients over the ranks; with them, agree whether any rank was
        signalled to stop or saw a non-finite loss."""
        signalled, diverged = self.world.average_gradients(
            [b.diff for b in self.net.learnable_params], [self._signalled is not None, not math.isfinite(loss)])
        if diverged:
            layer = self.net.first_nonfinite_layer()
            self._diverge(f"Iteration {self.iter}: the loss is not finite on at least one rank "
                          f"(here: {loss}; first non-finite layer here: {layer})", layer)
        if signalled:   # the signal every rank adopts: the highest number any rank received
            number = self.world.max(STOP_SIGNALS.get(self._signalled, 0))
            self.request_stop(next(n for n, v in STOP_SIGNALS.items() if v == number))
            self._signalled = None

    def apply_update(self, rate=None, loss=None):
        """Update every parameter from the gradients in its diff (Caffe's ApplyUpdate): scale by
        1/iter_size, clip, regularize, apply the rule at `rate` (default: this iteration's),
        then check for divergence with `loss` (default: the net's last loss)."""
        rate = self.learning_rate() if rate is None else rate
        loss = self.net.loss if loss is None else loss
        p, params = self.param, self.net.learnable_params
        grad_scale = 1.0 / p.iter_size
        # As Caffe's ApplyUpdate: the norm is of the gradient summed over iter_size, over the
        # parameters that learn (lr_mult != 0), and clipping happens before the 1/iter_size.
        sumsq = [sum_squares(blob.diff.reshape(-1)) if lr else 0.0 for blob, lr in zip(params, self.net.lr_mults)]
        norm = math.sqrt(sum(sumsq))
        if not math.isfinite(norm):
            name = next(n for n, s in zip(self.net.param_names, sumsq) if not math.isfinite(s))
            self._diverge(f"Iteration {self.iter}: the gradient of parameter '{name}' is not finite",
                          self.net.first_nonfinite_layer())
        if p.clip_gradients >= 0 and norm > p.clip_gradients:
            factor = p.clip_gradients / norm
            log.info("Gradient clipping: scaling down gradients (L2 norm %s > %s) by scale factor %s",
                     fmt(norm), fmt(p.clip_gradients), fmt(factor))
            grad_scale *= factor
        l1 = p.regularization_type == "L1"
        count = len(params)
        update_sq = weight_sq = 0.0
        for i, blob in enumerate(params):
            history = [self.history[s * count + i].reshape(-1) for s in range(self.history_slots)]
            self.apply_rule(blob.data.reshape(-1), blob.diff.reshape(-1), history, grad_scale,
                            p.weight_decay * self.net.decay_mults[i], l1, rate * self.net.lr_mults[i])
            update_sq += sum_squares(blob.diff.reshape(-1))   # the rule leaves the applied update in diff
            weight_sq += sum_squares(blob.data.reshape(-1))
        if self.guard.observe(update_sq, weight_sq, loss) and p.divergence_guard:
            self._diverge(f"Iteration {self.iter}: training diverged: for {self.guard.strikes} iterations "
                          f"in a row the loss rose while each update moved the weights by more than half their size (now "
                          f"|update| = {math.sqrt(update_sq):.3g}, |weights| = {math.sqrt(weight_sq):.3g})",
                          self.net.first_nonfinite_layer())

    # ------------------------------------------------------------ display and tests

    @staticmethod
    def _log_outputs(kind, values, weights):
        index = 0
        for name, value in values.items():
            for element in np.ravel(value):
                weight = weights.get(name, 0.0)
                note = f" (* {fmt(weight)} = {fmt(weight * element)} loss)" if weight else ""
                log.info("    %s net output #%d: %s = %s%s", kind, index, name, fmt(element), note)
                index += 1

    def _display(self, loss, rate):
        outputs = {name: self.net.blobs[name].data.copy() for name in self.net.outputs}
        log.info("Iteration %d, loss = %s", self.iter, fmt(self.smoothed_loss))
        self._log_outputs("Train", outputs, self.net.loss_weights)
        log.info("Iteration %d, lr = %s", self.iter, fmt(rate))
        self._emit({"event": "train", "iter": self.iter, "loss": loss,
                    "smoothed_loss": self.smoothed_loss, "lr": rate,
                    "outputs": {n: v.item() if v.size == 1 else v for n, v in outputs.items()}})

    def _test_all(self):
        """Test every test net. A stop during the pass puts the test nets' readers and the
        monitors back as they were before it, so the snapshot resumes into the same pass."""
        readers = checkpoint.layer_states(self.test_nets)
        monitors = (self.lr_scale, self.plateau.state(), self.early_stopping.state())
        for index in range(len(self.test_nets)):
            outputs = self.test(index)
            if outputs is None:
                checkpoint.set_layer_states(self.test_nets, readers)
                self.lr_scale = monitors[0]
                self.plateau.load(monitors[1])
                self.early_stopping.load(monitors[2])
                return
            if index == 0:
                self._observe_test(outputs)

    def test(self, index=0):
        """Mean of each output of test net `index` over test_iter batches (None if interrupted)."""
        net, batches = self.test_nets[index], self.param.test_iter[index]
        log.info("Iteration %d, Testing net (#%d)", self.iter, index)
        sums, loss = {}, 0.0
        for _ in range(batches):
            if self._stop_reason is not None:
                log.info("Test interrupted.")
                return None
            outputs = net.forward()
            loss += net.loss
            for name, value in outputs.items():
                sums[name] = sums.get(name, 0.0) + value.astype(np.float64)
        means = {name: (total / batches).item() if total.size == 1 else total / batches
                 for name, total in sums.items()}
        if self.world is not None:   # every rank scored a shard of the same size
            means = self.world.mean(means)
            loss = self.world.mean({"loss": loss})["loss"]
        event = {"event": "test", "iter": self.iter, "net": index, "outputs": means}
        if self.param.test_compute_loss:
            event["loss"] = loss / batches
            log.info("Test loss: %s", fmt(event["loss"]))
        self._log_outputs("Test", means, net.loss_weights)
        self._emit(event)
        return means

    def _observe_test(self, outputs):
        p = self.param
        if p.HasField("plateau"):
            value = monitored_value(outputs, p.plateau, "plateau", self.source)
            self.lr_scale = self.plateau.observe(value, lr_policies.rate(p, self.iter), self.lr_scale)
        if p.HasField("early_stopping"):
            value = monitored_value(outputs, p.early_stopping, "early_stopping", self.source)
            if self.early_stopping.observe(value, self.iter):
                self.request_stop("early_stopping")

    # ------------------------------------------------------------ snapshots

    def snapshot(self):
        """Write <prefix>_iter_N.caffemodel and .solverstate atomically; returns both paths."""
        try:
            model_path, state_path = checkpoint.snapshot(self)
        except ConfigError as err:
            kept = (f"the previous snapshot (iteration {self._last_snapshot_iter}) is kept: "
                    f"{self._last_snapshot[0]} and {self._last_snapshot[1]}" if self._last_snapshot
                    else "there is no earlier snapshot of this run")
            raise ConfigError(f"Iteration {self.iter}: the snapshot failed: {err}; {kept}") from err
        self._last_snapshot_iter, self._last_snapshot = self.iter, (model_path, state_path)
        self._emit({"event": "snapshot", "iter": self.iter, "caffemodel": model_path,
                    "solverstate": state_path})
        return model_path, state_path

    def restore(self, path):
        """Continue from a .solverstate: weights, history, iteration, rates and random states."""
        model_path = checkpoint.restore(self, path)
        self._broadcast_state()
        self._last_snapshot_iter, self._last_snapshot = self.iter, (model_path, os.fspath(path))
