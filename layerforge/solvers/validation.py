"""Reading a SolverParameter and checking it before any net is built: one clear ConfigError
naming the solver file and the wrong setting."""
import math
import os

from layerforge import io
from layerforge.io import ConfigError
from layerforge.proto import layerforge_pb2 as pb
from layerforge.solvers.lr_policies import POLICIES


def fmt(value):
    return f"{value:.6g}"


def read_solver(solver):
    """(SolverParameter, source name, folder of the solver file or None) for a path or message."""
    if isinstance(solver, pb.SolverParameter):
        return solver, "<SolverParameter>", None
    path = os.fspath(solver)
    return io.read_solver(path), path, os.path.dirname(os.path.abspath(path))


def weight_paths(weights):
    """A path, a comma-separated list of paths (as Caffe's --weights) or a list of them."""
    if isinstance(weights, os.PathLike):
        return [os.fspath(weights)]
    if isinstance(weights, str):
        weights = [weights]
    return [path for entry in weights for path in os.fspath(entry).split(",") if path]


def check_param(p, source):
    """Reject settings Caffe would reject or silently ignore (see docs/DECISIONS.md)."""

    def error(message):
        return ConfigError(f"{source}: {message}")

    sources = [f for f in ("net", "net_param", "train_net", "train_net_param") if p.HasField(f)]
    if not sources:
        raise error('no net given: set `net: "path/to/train_val.prototxt"` (or train_net / net_param)')
    if len(sources) > 1:
        raise error(f"give exactly one train net, not {' and '.join(sources)}")
    if not p.HasField("base_lr"):
        raise error("base_lr is missing: set the base learning rate, e.g. `base_lr: 0.01`")
    if not math.isfinite(p.base_lr):
        raise error(f"base_lr must be a finite number >= 0 (got {fmt(p.base_lr)})")
    if p.base_lr < 0:
        raise error(f"base_lr must not be negative (got {fmt(p.base_lr)})")
    policy = p.lr_policy or "fixed"
    if policy not in POLICIES:
        raise error(f"unknown lr_policy \"{p.lr_policy}\"; valid policies: {', '.join(POLICIES)}")
    if policy == "step" and p.stepsize <= 0:
        raise error(f"lr_policy \"step\" needs stepsize > 0 (got {p.stepsize})")
    if policy == "poly" and p.max_iter <= 0:
        raise error("lr_policy \"poly\" needs max_iter > 0")
    if p.regularization_type not in ("L1", "L2"):
        raise error(f"unknown regularization_type \"{p.regularization_type}\"; use L1 or L2")
    for field in ("iter_size", "average_loss"):
        if getattr(p, field) < 1:
            raise error(f"{field} must be at least 1 (got {getattr(p, field)})")
    for field in ("max_iter", "display", "snapshot", "test_interval"):
        if getattr(p, field) < 0:
            raise error(f"{field} must not be negative (got {getattr(p, field)})")
    generic = p.HasField("net") or p.HasField("net_param")
    specific = len(p.test_net) + len(p.test_net_param)
    if any(n <= 0 for n in p.test_iter):
        raise error(f"test_iter must be positive (got {list(p.test_iter)})")
    if len(p.test_iter) < specific:
        raise error(f"{specific} test net(s) (test_net / test_net_param) but {len(p.test_iter)} "
                    "test_iter value(s): give one test_iter per test net")
    if not generic and len(p.test_iter) > specific:
        raise error(f"{len(p.test_iter)} test_iter value(s) but {specific} test net(s): with "
                    "train_net, name each test net in test_net (or use `net:` for both phases)")
    if len(p.test_state) and len(p.test_state) != len(p.test_iter):
        raise error(f"{len(p.test_state)} test_state(s) for {len(p.test_iter)} test net(s): "
                    "give test_state once per test net or not at all")
    if p.test_iter and p.test_interval <= 0:
        raise error("test_iter is given but test_interval is not: set test_interval > 0 "
                    "(how many iterations between tests)")
    if p.test_interval > 0 and not p.test_iter:
        raise error(f"test_interval is {p.test_interval} but no test_iter is given: add "
                    "`test_iter: N` (batches per test) or set test_interval: 0")


def check_monitors(p, test_nets, source):
    """Plateau and early stopping must watch an output of test net #0."""
    for field in ("plateau", "early_stopping"):
        if not p.HasField(field):
            continue
        monitor = getattr(p, field).monitor
        if not test_nets:
            raise ConfigError(f"{source}: {field} watches a test output, but there is no test net "
                              "(add test_iter and test_interval)")
        if monitor not in test_nets[0].outputs:
            raise ConfigError(f"{source}: {field}.monitor \"{monitor}\" is not an output of test net #0; "
                              f"its outputs are: {', '.join(test_nets[0].outputs) or 'none'}")
