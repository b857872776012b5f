"""Solver: the training loop every update rule shares (Caffe's Solver and SGDSolver base).

`get_solver(path_or_SolverParameter, weights=None)` builds the solver the file's `type`
names (case-insensitive; the deprecated `solver_type` enum too). The base class owns the
loop, tests, display, snapshots, learning-rate policies, plateau and early stopping;
each subclass in sgd_solvers.py only applies its update rule to one parameter.

One iteration: zero the parameter diffs, iter_size × forward+backward, scale the
gradients by 1/iter_size, clip them (clip_gradients: the global L2 norm over all
parameters), regularize (L2 adds weight_decay·decay_mult·w, L1 its sign), compute the
update value from the gradient and history with the local rate lr·lr_mult, then
data -= diff. A tied parameter is one Blob, updated once with its summed gradient.
(Caffe clips before dividing by iter_size; layerforge clips the averaged gradient.)

Choices where Caffe is silent or unfriendly:
- Seeds: `random_seed >= 0` seeds the train net with it and test net i with
  random_seed + 1 + i. A negative (default) random_seed uses seed 0, so runs repeat
  exactly unless a seed is set.
- A relative `net:` / `train_net:` / `test_net:` path is tried against the current
  directory (as Caffe does), then against the solver file's folder.
- A missing `lr_policy` means "fixed". Rates are computed in float64.
- `weights` (the argument, else the solver's `weights:` fields; comma-separated lists
  allowed, as Caffe) are loaded into the train net and every test net before sharing.
- `snapshot_prefix` is relative to the current directory (or beside the solver file when its
  first folder exists only there: io.read_solver); its folder is created. Unset,
  it is the solver file's path without extension; a prefix that is a directory (or ends
  with '/') gets the solver file's stem appended (Caffe's upgrade rule).
- `test_interval > 0` without any `test_iter` is an error (Caffe silently never tests).
- The average_loss window, plateau and early-stopping state and every layer's random
  generator and data-reader position (a layer's get_state()/set_state()) are saved in the
  .solverstate, so resuming from iteration k repeats the uninterrupted run bit for bit.
- solver_mode, device_id, debug_info, layer_wise_reduce, snapshot_format (always binary
  proto) and MyCaffe's eval_type / ap_version / show_per_class_result /
  snapshot_include_* are accepted and ignored: layerforge runs on the CPU.

Reduce-on-plateau (`plateau { monitor: "accuracy" mode: MAXIMIZE factor: 0.1 patience: 5
cooldown: 0 min_delta: 0 min_lr: 0 }`) watches a scalar output of test net #0. A test
improves when it beats the best so far by more than min_delta. After `patience` tests
without improvement the rate is multiplied by `factor` (never below min_lr; a rate already
at or below min_lr is left alone); then `cooldown` tests pass before tests count again.
The reduction is a scale on the policy's rate, so lr_policy keeps working underneath.
Early stopping (`early_stopping { monitor mode patience min_delta }`) ends training after
`patience` tests without improvement; the log names the best value and its iteration.

Control: `solve()` installs a SIGINT handler (main thread only): the first Ctrl-C
finishes the current iteration, snapshots and returns; a second raises KeyboardInterrupt.
`request_stop(reason)` does the same from a callback. A non-finite loss or gradient
snapshots the last good state (before the bad update) and raises TrainingDiverged naming
the first layer whose top went non-finite.

Callbacks (`solver.callbacks.append(f)`) receive dicts: {"event": "iteration", "iter",
"loss"} after every update; {"event": "train", "iter", "loss", "smoothed_loss", "lr",
"outputs"} at display steps; {"event": "test", "iter", "net", "outputs", "loss"};
{"event": "snapshot", "iter", "caffemodel", "solverstate"}; {"event": "stop", "iter",
"reason"} with reason max_iter, sigint, early_stopping, diverged or a request_stop reason.
"""
import contextlib
import json
import logging
import math
import os
import signal
import threading

import numpy as np

from layerforge import io
from layerforge.io import ConfigError
from layerforge.kernels.updates import sum_squares
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb

log = logging.getLogger("layerforge")

SOLVERS = {}                # type name -> Solver subclass (filled by sgd_solvers.py)
LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
DEFAULT_SEED = 0
_LEGACY_TYPES = {pb.SolverParameter.SGD: "SGD", pb.SolverParameter.NESTEROV: "Nesterov",
                 pb.SolverParameter.ADAGRAD: "AdaGrad", pb.SolverParameter.RMSPROP: "RMSProp",
                 pb.SolverParameter.ADADELTA: "AdaDelta", pb.SolverParameter.ADAM: "Adam"}


class TrainingDiverged(RuntimeError):
    """The loss or a gradient went NaN/Inf; `layer` is the first layer with a non-finite top."""

    def __init__(self, message, layer=None, snapshot=None):
        super().__init__(message)
        self.layer, self.snapshot = layer, snapshot


def register_solver(type_name):
    """Class decorator: make a Solver subclass reachable as `type: "<type_name>"`."""

    def decorate(cls):
        SOLVERS[type_name] = cls
        cls.type_name = type_name
        return cls

    return decorate


def _read(solver):
    """(SolverParameter, source name, folder of the solver file or None)."""
    if isinstance(solver, pb.SolverParameter):
        return solver, "<SolverParameter>", None
    path = os.fspath(solver)
    return io.read_solver(path), path, os.path.dirname(os.path.abspath(path))


def solver_type(param, source="<SolverParameter>"):
    """The canonical type name of a SolverParameter (`type`, else the legacy enum)."""
    import layerforge.sgd_solvers  # noqa: F401  (registers the solver types)
    name = param.type
    if param.HasField("solver_type"):
        legacy = _LEGACY_TYPES[param.solver_type]
        if param.HasField("type") and name.lower() != legacy.lower():
            raise ConfigError(f"{source}: solver_type {pb.SolverParameter.SolverType.Name(param.solver_type)} "
                              f"and type \"{name}\" disagree; remove the deprecated solver_type")
        name = param.type if param.HasField("type") else legacy
    for known in SOLVERS:
        if known.lower() == name.lower():
            return known
    raise ConfigError(f"{source}: unknown solver type \"{name}\"; valid types: {', '.join(SOLVERS)}")


def get_solver(solver, weights=None):
    """The Solver subclass `solver` (a solver prototxt path or SolverParameter) asks for."""
    param, source, _ = _read(solver)
    return SOLVERS[solver_type(param, source)](solver, weights)


def _weight_paths(weights):
    """A path, a comma-separated list of paths (as Caffe's --weights) or a list of them."""
    if isinstance(weights, os.PathLike):
        return [os.fspath(weights)]
    if isinstance(weights, str):
        weights = [weights]
    return [path for entry in weights for path in os.fspath(entry).split(",") if path]


def _fmt(value):
    return f"{value:.6g}"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Solver:
    """Training loop over a train net and its test nets; subclasses supply `apply_rule`."""

    type_name = None
    history_slots = 1        # history arrays per parameter (Caffe's history_ blobs)

    def __init__(self, solver, weights=None):
        self.param, self.source, self._folder = _read(solver)
        self._check_param()
        self.check_rule()
        seed = self.param.random_seed if self.param.random_seed >= 0 else DEFAULT_SEED
        weights = _weight_paths(self.param.weights if weights is None else weights)
        self.net = self._build_train_net(seed, weights)
        self.test_nets = self._build_test_nets(seed, weights)
        self._check_monitors()
        self.iter = 0
        self.current_step = 0
        self.lr_scale = 1.0
        self.history = [np.zeros_like(blob.data) for _ in range(self.history_slots)
                        for blob in self.net.learnable_params]
        self.callbacks = []
        self.smoothed_loss = 0.0
        self._losses = []
        self._loss_index = 0
        self._monitor = {"plateau": {"best": None, "wait": 0, "cooldown": 0},
                         "early_stopping": {"best": None, "best_iter": None, "wait": 0}}
        self._stop_reason = None
        self._last_snapshot_iter = None
        self.snapshot_prefix = self._snapshot_prefix()

    # ------------------------------------------------------------ configuration

    def _error(self, message):
        return ConfigError(f"{self.source}: {message}")

    def check_rule(self):
        """Subclasses reject settings their update rule cannot use."""

    def _check_param(self):
        p = self.param
        sources = [f for f in ("net", "net_param", "train_net", "train_net_param") if p.HasField(f)]
        if not sources:
            raise self._error('no net given: set `net: "path/to/train_val.prototxt"` '
                              "(or train_net / net_param)")
        if len(sources) > 1:
            raise self._error(f"give exactly one train net, not {' and '.join(sources)}")
        if not p.HasField("base_lr"):
            raise self._error("base_lr is missing: set the base learning rate, e.g. `base_lr: 0.01`")
        if p.base_lr < 0:
            raise self._error(f"base_lr must not be negative (got {_fmt(p.base_lr)})")
        policy = p.lr_policy or "fixed"
        if policy not in LR_POLICIES:
            raise self._error(f"unknown lr_policy \"{p.lr_policy}\"; valid policies: {', '.join(LR_POLICIES)}")
        if policy == "step" and p.stepsize <= 0:
            raise self._error(f"lr_policy \"step\" needs stepsize > 0 (got {p.stepsize})")
        if policy == "poly" and p.max_iter <= 0:
            raise self._error("lr_policy \"poly\" needs max_iter > 0")
        if p.regularization_type not in ("L1", "L2"):
            raise self._error(f"unknown regularization_type \"{p.regularization_type}\"; use L1 or L2")
        for field in ("iter_size", "average_loss"):
            if getattr(p, field) < 1:
                raise self._error(f"{field} must be at least 1 (got {getattr(p, field)})")
        for field in ("max_iter", "display", "snapshot", "test_interval"):
            if getattr(p, field) < 0:
                raise self._error(f"{field} must not be negative (got {getattr(p, field)})")
        generic = p.HasField("net") or p.HasField("net_param")
        specific = len(p.test_net) + len(p.test_net_param)
        if any(n <= 0 for n in p.test_iter):
            raise self._error(f"test_iter must be positive (got {list(p.test_iter)})")
        if len(p.test_iter) < specific:
            raise self._error(f"{specific} test net(s) (test_net / test_net_param) but {len(p.test_iter)} "
                              "test_iter value(s): give one test_iter per test net")
        if not generic and len(p.test_iter) > specific:
            raise self._error(f"{len(p.test_iter)} test_iter value(s) but {specific} test net(s): with "
                              "train_net, name each test net in test_net (or use `net:` for both phases)")
        if len(p.test_state) and len(p.test_state) != len(p.test_iter):
            raise self._error(f"{len(p.test_state)} test_state(s) for {len(p.test_iter)} test net(s): "
                              "give test_state once per test net or not at all")
        if p.test_iter and p.test_interval <= 0:
            raise self._error("test_iter is given but test_interval is not: set test_interval > 0 "
                              "(how many iterations between tests)")
        if p.test_interval > 0 and not p.test_iter:
            raise self._error(f"test_interval is {p.test_interval} but no test_iter is given: add "
                              "`test_iter: N` (batches per test) or set test_interval: 0")

    def _net_path(self, path):
        if os.path.exists(path) or os.path.isabs(path) or self._folder is None:
            return path
        beside = os.path.join(self._folder, path)
        if os.path.exists(beside):
            return beside
        raise self._error(f"net file \"{path}\" not found in the current directory ({os.getcwd()}) "
                          f"nor next to the solver file ({self._folder})")

    def _make_net(self, source, phase, extra_state, seed):
        """Caffe's net construction: state = phase, then the net's own state, then the solver's."""
        if isinstance(source, pb.NetParameter):
            own, model = source.state, pb.NetParameter()
            model.CopyFrom(source)
        else:
            model = self._net_path(source)
            own = io.read_net(model).state
        state = pb.NetState(phase=phase)
        state.MergeFrom(own)
        if extra_state is not None:
            state.MergeFrom(extra_state)
        if isinstance(model, pb.NetParameter):
            model.state.CopyFrom(state)
        return Net(model, state.phase, level=state.level, stages=list(state.stage), seed=seed)

    def _build_train_net(self, seed, weights):
        p = self.param
        source = next(getattr(p, f) for f in ("train_net_param", "train_net", "net_param", "net")
                      if p.HasField(f))
        net = self._make_net(source, pb.TRAIN, p.train_state if p.HasField("train_state") else None, seed)
        for path in weights:
            net.copy_from(path)
        return net

    def _build_test_nets(self, seed, weights):
        p = self.param
        sources = list(p.test_net_param) + list(p.test_net)
        generic = p.net_param if p.HasField("net_param") else p.net if p.HasField("net") else None
        sources += [generic] * (len(p.test_iter) - len(sources))
        nets = []
        for i, source in enumerate(sources):
            net = self._make_net(source, pb.TEST, p.test_state[i] if p.test_state else None, seed + 1 + i)
            for path in weights:
                net.copy_from(path)
            net.share_with(self.net)
            nets.append(net)
        return nets

    def _check_monitors(self):
        for field in ("plateau", "early_stopping"):
            if not self.param.HasField(field):
                continue
            monitor = getattr(self.param, field).monitor
            if not self.test_nets:
                raise self._error(f"{field} watches a test output, but there is no test net "
                                  "(add test_iter and test_interval)")
            if monitor not in self.test_nets[0].outputs:
                raise self._error(f"{field}.monitor \"{monitor}\" is not an output of test net #0; "
                                  f"its outputs are: {', '.join(self.test_nets[0].outputs) or 'none'}")

    def _snapshot_prefix(self):
        prefix = self.param.snapshot_prefix
        stem = os.path.splitext(self.source)[0] if self._folder else "snapshot"
        if not prefix:
            return stem
        if prefix.endswith(("/", os.sep)) or os.path.isdir(prefix):
            return os.path.join(prefix, os.path.basename(stem))
        return prefix

    # ------------------------------------------------------------ learning rate

    def _policy_rate(self):
        """Caffe's GetLearningRate for the current iteration (updates current_step)."""
        p, it = self.param, self.iter
        policy = p.lr_policy or "fixed"
        if policy == "fixed":
            return p.base_lr
        if policy == "step":
            self.current_step = it // p.stepsize
            return p.base_lr * p.gamma ** self.current_step
        if policy == "exp":
            return p.base_lr * p.gamma ** it
        if policy == "inv":
            return p.base_lr * (1.0 + p.gamma * it) ** -p.power
        if policy == "multistep":
            if self.current_step < len(p.stepvalue) and it >= p.stepvalue[self.current_step]:
                self.current_step += 1
                log.info("MultiStep Status: Iteration %d, step = %d", it, self.current_step)
            return p.base_lr * p.gamma ** self.current_step
        if policy == "poly":
            return p.base_lr * (1.0 - it / p.max_iter) ** p.power
        return p.base_lr / (1.0 + math.exp(-p.gamma * (it - p.stepsize)))   # sigmoid

    def learning_rate(self):
        """The rate of the current iteration: the lr_policy's value times the plateau scale."""
        return self._policy_rate() * self.lr_scale

    # ------------------------------------------------------------ training loop

    def _emit(self, event):
        for callback in self.callbacks:
            callback(event)

    def request_stop(self, reason="requested"):
        """Stop after the current iteration (solve() then snapshots)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def step(self, iters):
        """Run `iters` iterations (fewer if a stop is requested)."""
        stop_iter = self.iter + iters
        p = self.param
        while self.iter < stop_iter and self._stop_reason is None:
            if p.test_interval and self.iter % p.test_interval == 0 and (self.iter > 0 or p.test_initialization):
                self._test_all()
                if self._stop_reason is not None:
                    break
            loss = self._forward_backward()
            self._update_smoothed_loss(loss)
            rate = self.learning_rate()
            if p.display and self.iter % p.display == 0:
                self._display(loss, rate)
            self._apply_update(rate)
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
        with self._sigint_handler():
            self.step(p.max_iter - self.iter)
            reason = self._stop_reason or "max_iter"
            if (p.snapshot_after_train or reason == "sigint") and self._last_snapshot_iter != self.iter:
                self.snapshot()
        if self._stop_reason is not None:
            log.info("Optimization stopped early (%s).", reason)
            self._emit({"event": "stop", "iter": self.iter, "reason": reason})
            return
        if p.display and self.iter % p.display == 0:
            self.net.forward()
            self._update_smoothed_loss(self.net.loss)
            self._display(self.net.loss, self.learning_rate())
        if p.test_interval and self.iter % p.test_interval == 0:
            self._test_all()
        log.info("Optimization Done.")
        self._emit({"event": "stop", "iter": self.iter, "reason": "max_iter"})

    @contextlib.contextmanager
    def _sigint_handler(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop_reason == "sigint":
                raise KeyboardInterrupt
            self.request_stop("sigint")
            log.warning("Interrupted: finishing iteration %d, then snapshotting and stopping "
                        "(Ctrl-C again aborts at once)", self.iter)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _forward_backward(self):
        self.net.clear_param_diffs()
        total = 0.0
        for _ in range(self.param.iter_size):
            loss = self.net.forward_backward()
            if not math.isfinite(loss):
                layer = self.net.first_nonfinite_layer()
                where = (f"the first layer whose top went non-finite is '{layer}'" if layer else
                         "no layer top is non-finite (the loss sum overflowed)")
                self._diverge(f"Iteration {self.iter}: the loss is {loss}; {where}", layer)
            total += loss
        return total / self.param.iter_size

    def _diverge(self, message, layer):
        paths = self.snapshot()
        self._emit({"event": "stop", "iter": self.iter, "reason": "diverged"})
        raise TrainingDiverged(f"{message}. The last good state (iteration {self.iter}) is saved in "
                               f"{paths[0]} and {paths[1]}; try a lower base_lr or clip_gradients.",
                               layer, paths)

    def _update_smoothed_loss(self, loss):
        """Caffe's running mean over the last average_loss iteration losses."""
        window = self.param.average_loss
        if len(self._losses) < window:
            self._losses.append(loss)
            self.smoothed_loss = (self.smoothed_loss * (len(self._losses) - 1) + loss) / len(self._losses)
        else:
            self.smoothed_loss += (loss - self._losses[self._loss_index]) / window
            self._losses[self._loss_index] = loss
            self._loss_index = (self._loss_index + 1) % window

    def _log_outputs(self, kind, values, weights):
        index = 0
        for name, value in values.items():
            for element in np.ravel(value):
                weight = weights.get(name, 0.0)
                note = f" (* {_fmt(weight)} = {_fmt(weight * element)} loss)" if weight else ""
                log.info("    %s net output #%d: %s = %s%s", kind, index, name, _fmt(element), note)
                index += 1

    def _display(self, loss, rate):
        outputs = {name: self.net.blobs[name].data.copy() for name in self.net.outputs}
        log.info("Iteration %d, loss = %s", self.iter, _fmt(self.smoothed_loss))
        self._log_outputs("Train", outputs, self.net.loss_weights)
        log.info("Iteration %d, lr = %s", self.iter, _fmt(rate))
        self._emit({"event": "train", "iter": self.iter, "loss": loss,
                    "smoothed_loss": self.smoothed_loss, "lr": rate,
                    "outputs": {n: v.item() if v.size == 1 else v for n, v in outputs.items()}})

    def _apply_update(self, rate):
        p, params = self.param, self.net.learnable_params
        grad_scale = 1.0 / p.iter_size
        sumsq = [sum_squares(blob.diff.reshape(-1)) for blob in params]
        norm = math.sqrt(sum(sumsq)) * grad_scale
        if not math.isfinite(norm):
            name = next(n for n, s in zip(self.net.param_names, sumsq) if not math.isfinite(s))
            self._diverge(f"Iteration {self.iter}: the gradient of parameter '{name}' is not finite",
                          self.net.first_nonfinite_layer())
        if p.clip_gradients >= 0 and norm > p.clip_gradients:
            factor = p.clip_gradients / norm
            log.info("Gradient clipping: scaling down gradients (L2 norm %s > %s) by scale factor %s",
                     _fmt(norm), _fmt(p.clip_gradients), _fmt(factor))
            grad_scale *= factor
        l1 = p.regularization_type == "L1"
        count = len(params)
        for i, blob in enumerate(params):
            history = [self.history[s * count + i].reshape(-1) for s in range(self.history_slots)]
            self.apply_rule(blob.data.reshape(-1), blob.diff.reshape(-1), history, grad_scale,
                            p.weight_decay * self.net.decay_mults[i], l1, rate * self.net.lr_mults[i])

    def apply_rule(self, data, diff, history, grad_scale, local_decay, l1, local_rate):
        """Regularize, update `history` and apply one parameter's update (flat arrays)."""
        raise NotImplementedError

    # ------------------------------------------------------------ testing

    def _test_all(self):
        for index in range(len(self.test_nets)):
            outputs = self.test(index)
            if outputs is None:
                return
            if index == 0:
                self._update_monitors(outputs)

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
        event = {"event": "test", "iter": self.iter, "net": index, "outputs": means}
        if self.param.test_compute_loss:
            event["loss"] = loss / batches
            log.info("Test loss: %s", _fmt(event["loss"]))
        self._log_outputs("Test", means, net.loss_weights)
        self._emit(event)
        return means

    def _monitored(self, outputs, settings, field):
        value = np.asarray(outputs[settings.monitor])
        if value.size != 1:
            raise self._error(f"{field}.monitor \"{settings.monitor}\" must be a scalar test output "
                              f"(it has {value.size} values)")
        return float(value)

    @staticmethod
    def _improved(value, best, settings):
        if best is None:
            return True
        if settings.mode == pb.MINIMIZE:
            return value < best - settings.min_delta
        return value > best + settings.min_delta

    def _update_monitors(self, outputs):
        if self.param.HasField("plateau"):
            settings, state = self.param.plateau, self._monitor["plateau"]
            value = self._monitored(outputs, settings, "plateau")
            if state["cooldown"] > 0:
                state["cooldown"] -= 1
                state["wait"] = 0
            if self._improved(value, state["best"], settings):
                state["best"], state["wait"] = value, 0
            elif state["cooldown"] == 0:
                state["wait"] += 1
                if state["wait"] >= settings.patience:
                    self._reduce_rate(settings, state)
                    state["cooldown"], state["wait"] = settings.cooldown, 0
        if self.param.HasField("early_stopping"):
            settings, state = self.param.early_stopping, self._monitor["early_stopping"]
            value = self._monitored(outputs, settings, "early_stopping")
            if self._improved(value, state["best"], settings):
                state["best"], state["best_iter"], state["wait"] = value, self.iter, 0
            else:
                state["wait"] += 1
                if state["wait"] >= settings.patience:
                    log.info("Early stopping: test output '%s' has not improved for %d tests; best %s "
                             "at iteration %d", settings.monitor, state["wait"], _fmt(state["best"]),
                             state["best_iter"])
                    self.request_stop("early_stopping")

    def _reduce_rate(self, settings, state):
        policy_rate = self._policy_rate()
        rate = policy_rate * self.lr_scale
        if rate <= settings.min_lr or policy_rate <= 0:
            return
        new_rate = max(rate * settings.factor, settings.min_lr)
        self.lr_scale = new_rate / policy_rate
        log.info("Plateau: test output '%s' has not improved for %d tests (best %s); lr %s -> %s",
                 settings.monitor, state["wait"], _fmt(state["best"]), _fmt(rate), _fmt(new_rate))

    # ------------------------------------------------------------ snapshots

    def _nets(self):
        return [self.net] + self.test_nets

    def _rng_state(self):
        nets = []
        for net in self._nets():
            layers = {}
            for name, layer in net.layers.items():
                layers[name] = {"rng": layer.rng.bit_generator.state}
                if (state := layer.get_state()) is not None:
                    layers[name]["data"] = state
            nets.append(layers)
        return {"nets": nets}

    def snapshot(self):
        """Write <prefix>_iter_N.caffemodel and .solverstate atomically; returns both paths."""
        model_path = f"{self.snapshot_prefix}_iter_{self.iter}.caffemodel"
        state_path = f"{self.snapshot_prefix}_iter_{self.iter}.solverstate"
        log.info("Snapshotting to binary proto file %s", model_path)
        io.write_atomic(model_path, self.net.to_proto(self.param.snapshot_diff).SerializeToString())
        state = pb.SolverState(iter=self.iter, learned_net=model_path, current_step=self.current_step,
                               learning_rate_scale=self.lr_scale)
        for history in self.history:
            io.array_to_blobproto(history, state.history.add())
        state.rng_state = json.dumps(self._rng_state(), default=_json_default).encode()
        monitor = {"lr_scale": self.lr_scale, "smoothed_loss": self.smoothed_loss,
                   "losses": self._losses, "loss_index": self._loss_index, **self._monitor}
        state.monitor_state = json.dumps(monitor, default=_json_default).encode()
        log.info("Snapshotting solver state to binary proto file %s", state_path)
        io.write_atomic(state_path, state.SerializeToString())
        self._last_snapshot_iter = self.iter
        self._emit({"event": "snapshot", "iter": self.iter, "caffemodel": model_path,
                    "solverstate": state_path})
        return model_path, state_path

    def restore(self, path):
        """Continue from a .solverstate: weights, history, iteration, rates and random states."""
        path = os.fspath(path)
        log.info("Restoring previous solver status from %s", path)
        state = io.read_binary(path, pb.SolverState())
        params = self.net.learnable_params
        if len(state.history) != len(self.history):
            raise ConfigError(
                f"{path}: holds {len(state.history)} history blob(s), but this {self.type_name} solver "
                f"keeps {len(self.history)} for net '{self.net.name}' ({len(params)} learnable "
                f"parameter(s) × {self.history_slots}); the snapshot comes from another net or solver type")
        history = []
        for i, proto in enumerate(state.history):
            array = io.blobproto_to_array(proto, f"{path}: history blob {i}")
            expected = self.history[i].shape
            if array.size != self.history[i].size:
                name = self.net.param_names[i % len(params)]
                raise ConfigError(f"{path}: history blob {i} has shape {array.shape}, but parameter "
                                  f"'{name}' has shape {expected}; the snapshot comes from another net")
            history.append(array.reshape(expected))
        if state.learned_net:
            learned = state.learned_net
            if not os.path.exists(learned):
                beside = os.path.join(os.path.dirname(path), os.path.basename(learned))
                learned = beside if os.path.exists(beside) else learned
            try:
                self.net.copy_from(learned)
            except ValueError as err:
                raise ConfigError(f"{path}: cannot load its weights: {err}") from None
        for target, array in zip(self.history, history):
            target[...] = array
        self.iter, self.current_step = state.iter, state.current_step
        self.lr_scale = float(state.learning_rate_scale)
        if state.rng_state:
            for net, layers in zip(self._nets(), json.loads(state.rng_state)["nets"]):
                for name, saved in layers.items():
                    layer = net.layers.get(name)
                    if layer is None:
                        continue
                    layer.rng.bit_generator.state = saved["rng"]
                    if "data" in saved:
                        layer.set_state(saved["data"])
        if state.monitor_state:
            monitor = json.loads(state.monitor_state)
            self.lr_scale = monitor["lr_scale"]
            self.smoothed_loss, self._loss_index = monitor["smoothed_loss"], monitor["loss_index"]
            self._losses = monitor["losses"]
            self._monitor = {key: monitor[key] for key in self._monitor}
        self._last_snapshot_iter = self.iter
