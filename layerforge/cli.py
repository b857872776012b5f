"""The `layerforge` binary, Caffe's `caffe` tool in Python: train, test, time, draw, plot,
embed, oneshot, centroids, upgrade and data sub-commands. `python -m layerforge` is the same program.

Each command is one small function registered with `@command(name, arguments, help=...)`, as
Caffe's tool registers its actions: `arguments(parser)` declares its options and the function
runs it. Adding a command touches one place; `build_parser()` assembles them all. This module
holds the registry, the parser, main() and the train/test/time commands; the tool commands
live in `layerforge/tools/commands.py` and `tools/deploy_commands.py`, the data commands in
`layerforge/data/commands.py` (`_PLUGINS`). (A little over 400 lines: `train` is the command
with the most to do — the prefix lock, the JSON log, the progress bar, signals and MPI ranks.)

Results go to stdout; log lines ("Iteration 500, loss = 0.0421") go to stderr. Bad input
(a missing file, a malformed prototxt, an unknown layer) prints one line,
"layerforge: error: <message>", and exits with status 2; --debug shows the traceback.
Caffe's single-dash spellings of its flags (`-solver S`, `-weights W`, ...) are accepted.
"""
import argparse
import contextlib
import importlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable

PROG = "layerforge"
log = logging.getLogger("layerforge")


class CommandError(ValueError):
    """A sub-command cannot run as asked."""


# ---------------------------------------------------------------- registry

@dataclass
class Command:
    name: str                                  # "train", or "data mnist" inside the group "data"
    run: Callable                              # run(args) -> exit status (None = 0)
    arguments: Callable | None                 # arguments(parser) declares the options
    help: str
    description: str | None


_COMMANDS: dict[str, Command] = {}
_GROUPS: dict[str, str] = {}                   # group name -> help, e.g. "data"
# Modules that register more commands, imported in this order when the parser is built; a group
# whose module fails to import is reported as unavailable (not fatal).
_PLUGINS = {"tools": "layerforge.tools.commands", "deploy": "layerforge.tools.deploy_commands",
            "data": "layerforge.data.commands"}


def command(name, arguments=None, *, help, description=None):
    """Register the decorated `run(args)` as `layerforge NAME`; `arguments(parser)` declares its
    options. A two-word name ("data mnist") is a command of the group `group()` declared."""
    def register(run):
        _COMMANDS[name] = Command(name, run, arguments, help, description or help)
        return run
    return register


def group(name, help):
    """Declare a group of commands (`layerforge data mnist|images`)."""
    _GROUPS[name] = help


# Caffe's tool (gflags) spells its flags with one dash: `-solver S`; main() reads them as `--solver`.
CAFFE_FLAGS = ("solver", "model", "weights", "snapshot", "iterations", "phase", "gpu",
               "gray", "shuffle", "encoded", "encode_type", "resize_height", "resize_width", "backend")


def _caffe_spellings(argv):
    """argv with Caffe's single-dash flags (`-solver S`, `-weights=W`) spelled with two dashes."""
    return [f"-{arg}" if arg[:1] == "-" and arg[1:].split("=", 1)[0] in CAFFE_FLAGS else arg
            for arg in argv]


def at_least(minimum):
    """argparse type: an integer >= minimum."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def _gpu_option(parser):
    """Caffe's -gpu, accepted so that it fails with a clear message instead of a usage error."""
    parser.add_argument("--gpu", metavar="ID",
                        help="Caffe's GPU selection; layerforge runs on the CPU only, so this is an error")


def _version():
    from layerforge import __version__
    return f"{PROG} {__version__}"


def build_parser():
    """The argparse parser of every registered command."""
    unavailable = {}
    for name, module in _PLUGINS.items():
        try:
            importlib.import_module(module)
        except ImportError as err:
            unavailable[name] = err
    parser = argparse.ArgumentParser(
        prog=PROG, description="Caffe-style deep learning: train and test nets described in prototxt files.",
        epilog="Exit status: 0 done, 1 training diverged, 2 bad input or usage; a signal that stopped training "
               "(after it snapshotted): 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP. "
               f"Caffe's single-dash flags are accepted too ({', '.join('-' + f for f in CAFFE_FLAGS)}). "
               "Run 'layerforge COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="show the full traceback of errors")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups = {}

    def add(subparsers, name, help, description):
        sub = subparsers.add_parser(name, help=help, description=description)
        # SUPPRESS: `layerforge --debug train` must not be reset by the sub-command's default.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the full traceback of errors")
        return sub

    for spec in _COMMANDS.values():
        *path, name = spec.name.split()
        if path and path[0] in unavailable:
            continue
        subparsers = top
        if path:
            if path[0] not in groups:
                holder = add(top, path[0], _GROUPS[path[0]], _GROUPS[path[0]])
                groups[path[0]] = holder.add_subparsers(dest=f"{path[0]}_command", required=True,
                                                        metavar="COMMAND")
            subparsers = groups[path[0]]
        sub = add(subparsers, name, spec.help, spec.description)
        if spec.arguments is not None:
            spec.arguments(sub)
        sub.set_defaults(func=spec.run)
    for name, err in unavailable.items():
        add(top, name, f"{_GROUPS.get(name, name)} (unavailable)",
            f"Unavailable: the {name} commands failed to import ({err}).").set_defaults(
            func=_unavailable(name, err))
    return parser


def _unavailable(name, err):
    def run(args):
        raise CommandError(f"'{PROG} {name}' is unavailable: {err}")
    return run


# ---------------------------------------------------------------- train

def _train_arguments(p):
    p.add_argument("--solver", required=True, metavar="S", help="solver prototxt")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--weights", metavar="W", help="initialise from these .caffemodel weights")
    start.add_argument("--snapshot", metavar="S.solverstate",
                       help="resume from this solver state (and the weights it names)")
    p.add_argument("--log", metavar="FILE.jsonl",
                   help="JSON-lines log path (default: <snapshot_prefix>_log.jsonl; "
                        "appended to when resuming)")
    p.add_argument("--quiet", action="store_true", help="no log lines, only warnings and results")
    p.add_argument("--no-progress", action="store_true",
                   help="log lines instead of the progress bar on a terminal")
    _gpu_option(p)


@command("train", _train_arguments, help="train a net with a solver prototxt", description=(
    "Build the solver and train until max_iter (or early stopping / Ctrl-C, which snapshots). "
    "On a terminal a progress bar shows iterations, loss and the last test output (warnings "
    "still print above it); otherwise, or with --no-progress, Caffe-style log lines go to "
    "stderr. A JSON-lines log of every train/test/snapshot event "
    "is always written (for `layerforge plot`). The final test outputs are printed at the end. "
    "While it runs, <snapshot_prefix>.lock keeps a second run with the same prefix from starting."))
def cmd_train(args):
    from layerforge.kernels.compiling import on_first_compile

    notice = _CompileNotice()
    with on_first_compile(notice):
        return _train(args, notice)


class _CompileNotice:
    """Says once that Numba is compiling (first run after an install): a log line, and the
    progress bar's description while the bar waits for its first iteration."""

    def __init__(self):
        self.bar = None
        self.compiling = False

    def __call__(self):
        from layerforge.kernels.compiling import MESSAGE
        self.compiling = True
        log.info(MESSAGE)
        if self.bar is not None:
            self.show(self.bar)

    def show(self, bar):
        self.bar = bar
        if self.compiling and bar.n == bar.initial:
            bar.set_description_str("compiling Numba kernels")

    def done(self, bar):
        if self.compiling:
            self.compiling = False
            bar.set_description_str("")


def _train(args, notice):
    from layerforge.solvers import get_solver
    from layerforge.tools.log import JsonLinesLog

    solver = get_solver(args.solver, weights=args.weights)
    if solver.world is not None and solver.world.rank > 0:   # rank 0 alone logs and reports
        logging.getLogger("layerforge").setLevel(logging.WARNING)
        solver.solve(resume=args.snapshot)
        return _signal_status(solver)
    log_path = args.log or f"{solver.snapshot_prefix}_log.jsonl"
    finals, saved = {}, {}

    def remember_tests(event):
        if event.get("event") == "test":
            finals[event.get("net", 0)] = (event.get("iter"), event.get("outputs", {}))
        elif event.get("event") == "snapshot":
            saved.update(event)

    with solver.hold_prefix(), JsonLinesLog(log_path, append=args.snapshot is not None) as jsonl:
        jsonl({"event": "start", "solver": os.fspath(args.solver), "net": solver.net.name,
               "weights": args.weights, "resume": args.snapshot, "max_iter": solver.param.max_iter})
        solver.callbacks += [jsonl, remember_tests]
        log.info("Writing the JSON-lines training log to %s", log_path)
        if _show_progress() and not args.no_progress:
            _solve_with_progress_bar(solver, args.snapshot, notice)
        else:
            solver.solve(resume=args.snapshot)
        if not finals and solver.stop_reason is None:   # no test ran (max_iter < test_interval): test now
            for index in range(len(solver.test_nets)):
                solver.test(index)                       # recorded by both callbacks
    for index, (iteration, outputs) in sorted(finals.items()):
        print(f"Test net #{index} (iteration {iteration}):")
        for name, value in outputs.items():
            print(f"    {name} = {_format_value(value)}")
    print(f"Training log: {log_path}")
    status = _signal_status(solver)
    if status:
        print(f"Stopped by {solver.stop_reason.upper()} at iteration {solver.iter}: weights in "
              f"{saved.get('caffemodel')}, solver state in {saved.get('solverstate')} "
              f"(resume with --snapshot)")
    return status


def _signal_status(solver):
    """128 + the signal's number when a signal stopped training (the shell's convention), else 0."""
    from layerforge.solvers.base import STOP_SIGNALS
    number = STOP_SIGNALS.get(solver.stop_reason)
    return 128 + number if number else 0


def _show_progress():
    return sys.stderr.isatty()


def _solve_with_progress_bar(solver, resume, notice):
    """Solve with a tqdm bar (iterations, smoothed loss, last test output) in place of the
    info log lines; warnings print above the bar. A resumed run's bar starts at the restored
    iteration, so its rate and ETA count only the iterations run now. While Numba compiles
    before the first iteration, the bar says so (`notice`)."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    if resume is not None:
        solver.restore(resume)
    bar = tqdm(total=solver.param.max_iter, initial=solver.iter, unit="iter",
               dynamic_ncols=True, file=sys.stderr)
    notice.show(bar)
    postfix = {}

    def update(event):
        kind = event.get("event")
        if kind in ("iteration", "train"):
            notice.done(bar)
            bar.update(max(0, event["iter"] - bar.n))
        if kind == "train":
            postfix["loss"] = f"{event['smoothed_loss']:.4g}"
        elif kind == "test" and event.get("outputs"):
            name, value = _headline(event["outputs"])
            postfix[name] = _format_value(value)
        else:
            return
        bar.set_postfix(postfix)

    solver.callbacks.append(update)
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        with logging_redirect_tqdm(loggers=[log]), bar:
            solver.solve()
            bar.update(max(0, solver.iter - bar.n))
    finally:
        log.setLevel(level)


def _headline(outputs):
    """The test output worth showing in the bar: accuracy if there is one, else the first."""
    name = next((n for n in outputs if "accuracy" in n), next(iter(outputs)))
    return name, outputs[name]


def _format_value(value):
    return f"{value:.6g}" if isinstance(value, (int, float)) else str(value)


# ---------------------------------------------------------------- test, time

def _test_arguments(p):
    p.add_argument("--model", required=True, metavar="M", help="net prototxt")
    p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    p.add_argument("--iterations", type=at_least(1), default=50, metavar="N",
                   help="number of batches (default: 50)")
    p.add_argument("--phase", choices=("TEST", "RUN"), default="TEST", help="net phase (default: TEST)")
    _gpu_option(p)


@command("test", _test_arguments, help="score a trained net", description=(
    "Run N forward passes and print the mean of each scalar output, like `caffe test` "
    "(e.g. 'accuracy = 0.9712'; losses also show their weighted value)."))
def cmd_test(args):
    import numpy as np

    from layerforge.net import Net

    net = Net(args.model, args.phase, weights=args.weights)
    weights = net.loss_weights
    sums, skipped = {}, set()
    for batch in range(args.iterations):
        for name, value in net.forward().items():
            if np.size(value) != 1:
                skipped.add(f"{name} {tuple(np.shape(value))}")
                continue
            value = float(np.ravel(value)[0])
            sums[name] = sums.get(name, 0.0) + value
            log.info("Batch %d, %s = %.6g", batch, name, value)
    if skipped:
        log.info("Not averaged (not scalar): %s", ", ".join(sorted(skipped)))
    if not sums:
        log.warning("The net has no scalar outputs to report")
    for name, total in sums.items():
        mean = total / args.iterations
        extra = f" (* {weights[name]:g} = {weights[name] * mean:.6g} loss)" if name in weights else ""
        print(f"{name} = {mean:.6g}{extra}")
    return 0


def _time_arguments(p):
    p.add_argument("--model", required=True, metavar="M", help="net prototxt")
    p.add_argument("--iterations", type=at_least(1), default=50, metavar="N",
                   help="timed iterations (default: 50)")
    p.add_argument("--warmup", type=at_least(0), default=1, metavar="N",
                   help="untimed iterations first (default: 1)")
    p.add_argument("--phase", choices=("TRAIN", "TEST", "RUN"), default="TRAIN",
                   help="net phase (default: TRAIN)")
    _gpu_option(p)


@command("time", _time_arguments, help="benchmark a net layer by layer", description=(
    "Mean forward and backward milliseconds per layer and in total per iteration, like `caffe "
    "time`. The net runs on its own data (Input blobs hold zeros); backward runs where "
    "training would run it, so a net without a loss times forward only. Untimed warm-up "
    "passes come first so Numba compilation is not counted. Tied twin branches run as one "
    "batch, so their time shows on the first branch's rows (LAYERFORGE_MERGE_TWINS=0 runs "
    "them apart)."))
def cmd_time(args):
    from layerforge.net import Net
    from layerforge.tools.timing import time_net

    net = Net(args.model, args.phase)
    log.info("Timing %d forward-backward iterations after %d warm-up", args.iterations, args.warmup)
    for line in time_net(net, args.iterations, args.warmup).lines():
        print(line)
    return 0


group("data", "build LMDB or LevelDB datasets")


# ---------------------------------------------------------------- entry point

def _exit_status(err):
    """2 for bad input (layerforge's errors are ValueErrors: ConfigError, NetError, LayerError,
    UnknownLayerError, DatasetError, ...) and unreadable files; 1 when training diverged;
    None for anything else, which is a bug and keeps its traceback."""
    from layerforge.io import ConfigError
    from layerforge.layer import LayerError
    from layerforge.net import NetError
    from layerforge.registry import UnknownLayerError

    if isinstance(err, (ConfigError, NetError, LayerError, UnknownLayerError, OSError)) or (
            isinstance(err, ValueError) and type(err).__module__.startswith("layerforge.")):
        return 2
    solver = sys.modules.get("layerforge.solvers.base")
    if solver is not None and isinstance(err, solver.TrainingDiverged):
        return 1
    return None


@contextlib.contextmanager
def _logging(quiet):
    """Caffe-style lines on stderr while a command runs: 'I0312 10:23:45 Iteration 500, loss = 0.0421'.
    The handler and level are undone afterwards, so main() can be called again in-process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname).1s%(asctime)s %(message)s", "%m%d %H:%M:%S"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@contextlib.contextmanager
def _current_directory_importable():
    """Python layers' modules (`python_param.module`) are found in the current directory, as
    `python` finds them; the console script alone would only search its own folder."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def main(argv=None):
    """Run the `layerforge` command line; returns the exit status."""
    try:
        args = build_parser().parse_args(_caffe_spellings(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:   # --help, --version, or a usage error argparse already printed
        return int(exit_.code or 0)
    try:
        if getattr(args, "gpu", None) is not None:
            raise CommandError(f"-gpu {args.gpu}: layerforge runs on the CPU only; drop -gpu "
                               "(Numba kernels use the CPU cores)")
        with _logging(getattr(args, "quiet", False)), _current_directory_importable():
            return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        status = _exit_status(err)
        if args.debug or status is None:
            raise
        message = " ".join(str(err).split("\n")) or type(err).__name__
        from layerforge import distributed
        world = distributed.active()
        if world is not None:   # the other ranks would wait for this one forever: end them all
            print(f"{PROG}: error on rank {world.rank} of {world.size}: {message}", file=sys.stderr, flush=True)
            world.abort(status)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return status
