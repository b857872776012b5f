"""The `layerforge` binary, Caffe's `caffe` tool in Python: train, test, time, draw, plot,
embed, oneshot, centroids, upgrade and data sub-commands. `python -m layerforge` is the same program.

Each command is one small function registered with `@command(name, arguments, help=...)`, as
Caffe's tool registers its actions: `arguments(parser)` declares its options and the function
runs it. Adding a command touches one place; `build_parser()` assembles them all.

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
# Groups whose commands live in another module: imported when the parser is built, and reported
# as unavailable (not fatal) when the import fails.
_PLUGINS = {"data": "layerforge.data.commands"}


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
            _solve_with_progress_bar(solver, args.snapshot)
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


def _solve_with_progress_bar(solver, resume):
    """Solve with a tqdm bar (iterations, smoothed loss, last test output) in place of the
    info log lines; warnings print above the bar. A resumed run's bar starts at the restored
    iteration, so its rate and ETA count only the iterations run now."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    if resume is not None:
        solver.restore(resume)
    bar = tqdm(total=solver.param.max_iter, initial=solver.iter, unit="iter",
               dynamic_ncols=True, file=sys.stderr)
    postfix = {}

    def update(event):
        kind = event.get("event")
        if kind in ("iteration", "train"):
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


# ---------------------------------------------------------------- pictures

def _draw_arguments(p):
    p.add_argument("net", metavar="NET", help="net prototxt")
    p.add_argument("out", metavar="OUT", help="output file: out.png, out.svg or out.dot")
    p.add_argument("--phase", choices=("ALL", "TRAIN", "TEST", "RUN"), default="ALL",
                   help="draw only this phase's layers (default: ALL layers)")
    p.add_argument("--rankdir", choices=("auto", "LR", "TB", "RL", "BT"), default="auto",
                   help="graph direction (default: auto, top to bottom for a long net, left to "
                        "right for a short one)")


@command("draw", _draw_arguments, help="draw a net's graph", description=(
    "Draw layers (boxes) and blobs (ellipses) with pydot; parameters shared by name (tied "
    "weights) are dashed blue edges. The output extension picks the format: .dot needs "
    "nothing, .png/.svg/.pdf need Graphviz's `dot` program. Only OUT is written."))
def cmd_draw(args):
    from layerforge.tools.draw import draw_net

    phase = None if args.phase == "ALL" else args.phase
    print(f"Wrote {draw_net(args.net, args.out, phase, args.rankdir)}")
    return 0


def _plot_arguments(p):
    p.add_argument("log", metavar="LOG", help="training log: .jsonl, or a Caffe/layerforge text log")
    p.add_argument("--out", metavar="PNG", help="output PNG (default: LOG with .png)")


@command("plot", _plot_arguments, help="plot loss and test curves from a training log", description=(
    "Plot train/test loss (top) and the other test outputs (bottom) against iteration, from "
    "the JSON-lines log of `layerforge train` or a Caffe text log, to a PNG."))
def cmd_plot(args):
    from layerforge.tools.plot import plot_log

    out = args.out or os.path.splitext(os.fspath(args.log))[0] + ".png"
    print(f"Wrote {plot_log(args.log, out)}")
    return 0


def _embed_arguments(p):
    p.add_argument("--model", required=True, metavar="M", help="net prototxt")
    p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    p.add_argument("--blob", required=True, metavar="BLOB", help="blob with N×D encodings, e.g. feat")
    p.add_argument("--label-blob", metavar="BLOB",
                   help="blob with the labels (N, or N×K with the encoding's label in column 0; "
                        "default: 'label' if the net has it)")
    p.add_argument("--iterations", type=at_least(1), default=10, metavar="N",
                   help="batches to collect (default: 10)")
    p.add_argument("--phase", choices=("TRAIN", "TEST", "RUN"), default="TEST",
                   help="net phase (default: TEST)")
    p.add_argument("--images", metavar="DIR",
                   help="encode this folder's images instead (one sub-folder per class; the net "
                        "runs in phase RUN and its Input takes them, preprocessed as it says)")
    p.add_argument("--out", default="embed.png", metavar="PNG", help="output PNG (default: embed.png)")


@command("embed", _embed_arguments, help="scatter-plot a net's encodings by class", description=(
    "Run the net, collect the encodings in --blob and their labels, and scatter them coloured "
    "by class to a PNG, with the class centroids of a Decode layer reading --blob marked. "
    "Encodings wider than 2 are projected on their first two principal components (PCA; the "
    "title says so). The encodings come from the net's own data layer (--phase TEST), or from "
    "the images of --images; a net whose inputs nobody feeds (phase RUN without --images) is "
    "refused rather than plotting the encoding of zeros."))
def cmd_embed(args):
    import numpy as np

    from layerforge.net import Net
    from layerforge.tools.embed import collect_encodings, decode_centroids, plot_embedding

    label_blob = args.label_blob
    if args.images:
        from layerforge.tools.encode import ImageEncoder

        encoder = ImageEncoder(args.model, args.weights)
        files, images = encoder.read([args.images])
        encodings, net = encoder.encode(images, args.blob), encoder.net
        folders = [f.relative_to(args.images).parts[0] for f in files]
        names = sorted(set(folders))
        labels, label_blob = np.array([names.index(f) for f in folders]), f"folders of {args.images}"
    else:
        net = Net(args.model, args.phase, weights=args.weights)
        if net.inputs:
            raise CommandError(f"{args.model}: in phase {args.phase} the net reads its Input blobs "
                               f"({', '.join(net.inputs)}), which nothing feeds here; use --phase TEST "
                               f"(its Data layer) or --images DIR")
        if label_blob is None and "label" in net.blobs:
            label_blob = "label"
        encodings, labels = collect_encodings(net, args.blob, label_blob, args.iterations)
    if labels is None:
        log.warning("No label blob: the points are not coloured by class; pass --label-blob "
                    "with the data layer's label top (e.g. sim)")
    note = plot_embedding(encodings, labels, args.out, f"'{args.blob}' of {net.name or args.model}",
                          decode_centroids(net, args.blob))
    if note:
        print(f"Note: '{args.blob}' is {note}")
    print(f"Wrote {args.out} ({len(encodings)} encodings of '{args.blob}'"
          f"{f', classes from {label_blob!r}' if labels is not None else ''})")
    return 0


# ---------------------------------------------------------------- encodings of images

def _encoder_arguments(p):
    """--model, --weights and --scale of the commands that encode images (_encodable_images)."""
    p.add_argument("--model", required=True, metavar="M", help="net prototxt (phase RUN is used)")
    p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    p.add_argument("--scale", type=float, default=0.00390625, metavar="S",
                   help="pixel scale when the model has no transform_param (default: 1/256)")


def _encodable_images(args):
    """(RUN net with args.weights, images, labels, transform) for oneshot and centroids: the
    images of args.source (LMDB) or args.images (folder), transformed for the net's 'data'."""
    import numpy as np

    from layerforge import io
    from layerforge.net import Net
    from layerforge.tools import oneshot

    net = Net(args.model, "RUN", weights=args.weights)
    if "data" not in net.inputs:
        raise CommandError(f"{args.model}: no Input blob 'data' in phase RUN to feed the images to "
                           f"(inputs: {', '.join(net.inputs) or 'none'})")
    shape = net.blobs["data"].shape
    classes = args.classes.split(",") if args.classes else None
    if getattr(args, "images", None):
        size, gray = (shape[2:], shape[1] == 1) if len(shape) == 4 else (None, False)
        images, labels = oneshot.load_folder_images(args.images, classes, size, gray)
    else:
        images, labels = oneshot.load_lmdb_images(args.source, classes)
    transform, item_shape, how = oneshot.input_transform(io.read_net(args.model), args.scale,
                                                         images.shape[1:])
    if tuple(item_shape) != tuple(shape[1:]):
        raise CommandError(f"the images are {'x'.join(map(str, item_shape))} after the transform but "
                           f"the net's input 'data' is {'x'.join(map(str, shape[1:]))} per item")
    found, counts = np.unique(labels, return_counts=True)
    log.info("Encoding %d images of classes %s (%s per class), transformed %s", len(images),
             ", ".join(map(str, found)), "-".join(map(str, sorted({counts.min(), counts.max()}))), how)
    return net, images, labels, transform


def _oneshot_arguments(p):
    _encoder_arguments(p)
    p.add_argument("--ways", type=at_least(2), default=5, metavar="N",
                   help="classes per trial (default: 5; with --runs, the runs decide)")
    p.add_argument("--trials", type=at_least(1), default=1000, metavar="T",
                   help="number of trials (default: 1000; with --runs, one per test item)")
    p.add_argument("--blob", metavar="BLOB",
                   help="encoding blob (default: feat), or a verification net's score blob "
                        "(default: its output)")
    images = p.add_mutually_exclusive_group(required=True)
    images.add_argument("--source", metavar="LMDB", help="LMDB of Datum records (labels are the classes)")
    images.add_argument("--images", metavar="DIR",
                        help="folder with one sub-folder of images per class (resized to the "
                             "net's input size, grayscale for 1 channel)")
    images.add_argument("--runs", metavar="DIR",
                        help="Lake's one-shot runs: DIR/runNN/{class_labels.txt,training/,test/}; each "
                             "test item is classified among its run's training images")
    images.add_argument("--alphabets", metavar="A,B,...",
                        help="Omniglot alphabets (of the zips in --from): N-way trials within one "
                             "alphabet, supports by one drawer and the query by another")
    p.add_argument("--from", dest="zip_dir", metavar="ZIPDIR",
                   help="with --alphabets: folder of Omniglot .zip files, or one zip "
                        "(default: $LAYERFORGE_OMNIGLOT)")
    p.add_argument("--classes", metavar="LIST",
                   help="comma-separated classes to use, e.g. 5,6,7,8,9 (labels, or folder names "
                        "with --images; default: all)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")


@command("oneshot", _oneshot_arguments, help="N-way one-shot accuracy on held-out classes", description=(
    "One-shot evaluation as in Koch et al.: each trial has N support images, one per class, and a "
    "query of one of those classes, classified by the nearest support encoding (Euclidean, ties "
    "broken at random) or, for a verification net (RUN inputs 'data' and 'data_p'), by the highest "
    "score of the pair. Trials come from labelled images (--source, --images: N random classes, "
    "the query another image of the first), from Omniglot alphabets (--alphabets: within one "
    "alphabet, as Lake draws them) or from Lake's run folders (--runs); Omniglot images are read "
    "as `layerforge data omniglot` reads them, resized to the net's input. Prints the accuracy "
    "over the trials and its 95% Wilson score interval. The net runs in phase RUN: its Input "
    "blob 'data' takes the images, transformed as its Input layer's transform_param says (else "
    "as its Data layer's does in TEST, else scaled by --scale); every image is encoded once. "
    "Seeded, so runs repeat."))
def cmd_oneshot(args):
    import numpy as np

    from layerforge.tools import oneshot as tool

    if args.runs or args.alphabets:
        result = _omniglot_one_shot(args)
    else:
        net, images, labels, transform = _encodable_images(args)
        encode = tool.net_encoder(net, args.blob or "feat", transform=transform)
        result = tool.one_shot_accuracy(encode, images, labels, args.ways, args.trials,
                                        np.random.default_rng(args.seed))
    print(result.line())
    return 0


def _omniglot_one_shot(args):
    """OneShotResult of --runs or --alphabets trials, by encodings or by a verification net."""
    import numpy as np

    from layerforge import io
    from layerforge.net import Net
    from layerforge.tools import oneshot as tool

    net = Net(args.model, "RUN", weights=args.weights)
    shape = net.blobs["data"].shape if "data" in net.inputs else ()
    if len(shape) != 4 or shape[1] != 1:
        raise CommandError(f"{args.model}: Omniglot trials need an Input blob 'data' of N x 1 x H x W "
                           f"in phase RUN (inputs: {', '.join(net.inputs) or 'none'})")
    rng = np.random.default_rng(args.seed)
    if args.runs:
        images, query, support = tool.read_runs(args.runs, tuple(shape[2:]))
        where = f"runs in {args.runs}"
    else:
        alphabets = [a.strip() for a in args.alphabets.split(",") if a.strip()]
        images, query, support = tool.alphabet_trials(args.zip_dir, alphabets, tuple(shape[2:]),
                                                      args.ways, args.trials, rng)
        where = f"alphabets {', '.join(alphabets)}"
    transform, _, how = tool.input_transform(io.read_net(args.model), args.scale, images.shape[1:])
    if "data_p" in net.inputs:
        score = tool.pair_scores(net, images, transform, args.blob)
        by = "verification score"
    else:
        score = tool.euclidean_scores(tool.net_encoder(net, args.blob or "feat", transform=transform)(images))
        by = f"Euclidean distance of '{args.blob or 'feat'}'"
    log.info("%d trials of %s (%d images, %dx%d, transformed %s), classified by %s", len(query), where,
             len(images), shape[2], shape[3], how, by)
    return tool.score_trials(score, query, support, rng)


def _centroids_arguments(p):
    _encoder_arguments(p)
    images = p.add_mutually_exclusive_group(required=True)
    images.add_argument("--source", metavar="LMDB", help="LMDB of labelled Datum records, e.g. the training set")
    images.add_argument("--images", metavar="DIR",
                        help="folder with one sub-folder of images per class; class k is the k-th "
                             "sub-folder in sorted order, as `data images` labels them")
    p.add_argument("--out", metavar="W", help="output .caffemodel (default: overwrite --weights)")
    p.add_argument("--classes", metavar="LIST",
                   help="comma-separated classes to use: labels, or folder names with --images "
                        "(default: all)")


@command("centroids", _centroids_arguments, help="set a net's Decode centroids to exact class means",
         description=(
    "Encode every image of --source (or --images) with the trained net (phase RUN, transformed "
    "as its Input or Data layer's transform_param says) and set each Decode layer's centroids to the mean encoding of each "
    "class, in place of the moving average learned during training. Writes the weights with "
    "these centroids to --out (default: over --weights)."))
def cmd_centroids(args):
    import numpy as np

    from layerforge.tools import centroids as tool, oneshot

    net, images, labels, transform = _encodable_images(args)
    if args.images:   # folder names -> the labels `data images` gives them
        folders = sorted(entry.name for entry in os.scandir(args.images) if entry.is_dir())
        labels = np.array([folders.index(name) for name in labels])
    done = tool.set_class_centroids(
        net, lambda blob: oneshot.net_encoder(net, blob, transform=transform), images, labels)
    out = args.out or args.weights
    net.save(out)
    for name, counts in done.items():
        print(f"{name}: centroids of {sum(counts > 0)} classes from {int(counts.sum())} images -> {out}")
    return 0


# ---------------------------------------------------------------- a trained net on image files

def _image_net_arguments(p, blob=True):
    p.add_argument("--model", required=True, metavar="M", help="deploy net prototxt (phase RUN is used)")
    p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    if blob:
        p.add_argument("--blob", default="feat", metavar="BLOB", help="encoding blob (default: feat)")
    p.add_argument("--scale", type=float, default=0.00390625, metavar="S",
                   help="pixel scale when the net has no transform_param (default: 1/256)")


_IMAGES_NOTE = ("Images are files or folders (searched recursively for PNG/JPEG), read grayscale "
                "or RGB as the net's input 'data' has 1 or 3 channels, resized to its height × "
                "width and preprocessed as the net's Input (else Data) layer transform_param says.")


def _encode_arguments(p):
    _image_net_arguments(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--out", required=True, metavar="F.npz|F.csv",
                   help="output: .npz (arrays 'images' and 'encodings') or .csv (image, e0, e1, ...)")


@command("encode", _encode_arguments, help="encode image files with a trained net",
         description="Run the net on each image and save the rows of --blob. " + _IMAGES_NOTE)
def cmd_encode(args):
    from layerforge.tools.encode import ImageEncoder, check_output, save_encodings

    check_output(args.out)
    encoder = ImageEncoder(args.model, args.weights, scale=args.scale)
    files, images = encoder.read(args.images)
    encodings = encoder.encode(images, args.blob)
    log.info("Encoded %d images, transformed %s", len(files), encoder.how)
    print(f"Wrote {save_encodings(args.out, files, encodings)} ({len(files)} encodings of "
          f"'{args.blob}', {encodings.shape[1]} values each)")
    return 0


def _classify_arguments(p):
    _image_net_arguments(p, blob=False)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--labels", metavar="labels.txt",
                   help="class names, one per line in label order (as `data images` writes; "
                        "default: the class numbers)")
    p.add_argument("--out", metavar="F.csv", help="also write every image's distance to every class")


@command("classify", _classify_arguments, help="classify image files by their nearest class centroid",
         description=(
    "Run the net on each image and print the class whose centroid (the net's Decode layer, "
    "e.g. after `layerforge centroids`) is nearest to its encoding, with the Euclidean "
    "distance, and the runner-up. " + _IMAGES_NOTE))
def cmd_classify(args):
    import numpy as np

    from layerforge.tools.encode import ImageEncoder, class_names

    encoder = ImageEncoder(args.model, args.weights, scale=args.scale)
    files, images = encoder.read(args.images)
    top = encoder.decode_top()
    distances = np.sqrt(encoder.encode(images, top))
    known = distances[0] < np.sqrt(np.finfo(np.float32).max) / 2   # an unknown class is at FLT_MAX
    if not known.any():
        raise CommandError(f"{args.weights}: the Decode layer knows no class centroid yet; "
                           f"run `layerforge centroids` first")
    names = class_names(args.labels, distances.shape[1])
    order = np.argsort(np.where(known, distances, np.inf), axis=1)
    for file, row, (first, second) in zip(files, distances, order[:, :2]):
        runner_up = f"; next {names[second]} at {row[second]:.4g}" if known[second] else ""
        print(f"{file}: {names[first]} (distance {row[first]:.4g}{runner_up})")
    if args.out:
        import csv

        with open(args.out, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["image", "class"] + [f"d_{name}" for name in names])
            writer.writerows([str(f), names[o[0]], *(f"{d:.6g}" if k else "" for d, k in zip(row, known))]
                             for f, o, row in zip(files, order, distances))
        print(f"Wrote {args.out}")
    return 0


def _verify_arguments(p):
    _image_net_arguments(p)
    p.add_argument("first", metavar="A", help="image file (or folder: every image of it)")
    p.add_argument("second", metavar="B", help="image file (or folder: every image of it)")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="largest distance still called 'same' (default: half the smallest distance "
                        "between two class centroids of the net's Decode layer)")


@command("verify", _verify_arguments, help="same or different: compare two images' encodings",
         description=(
    "Encode A and B and print 'same' when the Euclidean distance between their encodings is at "
    "most the threshold, else 'different', with the distance and the threshold. Folders "
    "compare every image of A with every image of B. " + _IMAGES_NOTE))
def cmd_verify(args):
    import numpy as np

    from layerforge.tools.encode import ImageEncoder

    encoder = ImageEncoder(args.model, args.weights, scale=args.scale)
    threshold, why = args.threshold, "given"
    if threshold is None:
        threshold, why = encoder.centroid_spacing() / 2, "half the smallest centroid distance"
    files_a, images_a = encoder.read([args.first])
    files_b, images_b = encoder.read([args.second])
    a, b = encoder.encode(images_a, args.blob), encoder.encode(images_b, args.blob)
    for file_a, row_a in zip(files_a, a):
        for file_b, row_b in zip(files_b, b):
            distance = float(np.sqrt(((row_a - row_b) ** 2).sum()))
            verdict, sign = ("same", "<=") if distance <= threshold else ("different", ">")
            print(f"{file_a} {file_b}: {verdict} (distance {distance:.4g} {sign} threshold "
                  f"{threshold:.4g}, {why})")
    return 0


def _export_arguments(p):
    p.add_argument("--onnx", action="store_true",
                   help="write ONNX (opset 13; the only format, so also the default)")
    p.add_argument("model", metavar="M", help="deploy net prototxt (phase RUN is exported)")
    p.add_argument("weights", metavar="W", help=".caffemodel weights")
    p.add_argument("out", metavar="OUT.onnx", help="output file")


@command("export", _export_arguments, help="export a trained net to ONNX", description=(
    "Write the net's RUN phase with its weights as an ONNX model (checked by onnx's checker): "
    "inputs are the net's Input blobs, with its transform_param (mean, scale) applied as in "
    "Net.forward, so raw pixels go in; outputs are the net's outputs; the batch size is free. "
    "A layer with no ONNX mapping is an error naming it."))
def cmd_export(args):
    from layerforge.tools.export import export_net

    model = export_net(args.model, args.weights, args.out)
    graph = model.graph
    print(f"Wrote {args.out} (ONNX opset {model.opset_import[0].version}, {len(graph.node)} nodes; "
          f"inputs {', '.join(i.name for i in graph.input)}; outputs {', '.join(o.name for o in graph.output)})")
    return 0


def _extract_arguments(p):
    p.add_argument("--model", required=True, metavar="M", help="net prototxt (with its data layer)")
    p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    p.add_argument("--blobs", required=True, metavar="LIST", help="comma-separated blob names, e.g. feat,ip1")
    p.add_argument("--out", required=True, metavar="F.npz|DB[,DB...]",
                   help="a .npz (one array per blob, plus 'label' when the net has that blob), "
                        "or one database folder per blob")
    p.add_argument("--iterations", type=at_least(1), default=1, metavar="N",
                   help="number of batches (default: 1)")
    p.add_argument("--phase", choices=("TRAIN", "TEST", "RUN"), default="TEST",
                   help="net phase (default: TEST)")
    p.add_argument("--backend", choices=("lmdb", "leveldb"), default="lmdb",
                   help="database kind for database outputs (default: lmdb)")


@command("extract_features", _extract_arguments, help="Caffe's extract_features: save blobs' values",
         description=(
    "Run N forward passes and save the values of the named blobs: to a .npz, or, as Caffe's "
    "tool does, to one database per blob holding one Datum per item (float_data, shaped "
    "C×H×W; an N×D blob gives D×1×1)."))
def cmd_extract_features(args):
    import numpy as np

    from layerforge.data.store import write_db
    from layerforge.net import Net
    from layerforge.tools.features import extract_features, feature_datums

    blobs = args.blobs.split(",")
    outs = args.out.split(",")
    to_npz = len(outs) == 1 and outs[0].endswith(".npz")
    if not to_npz and len(outs) != len(blobs):
        raise CommandError(f"--out names {len(outs)} databases for {len(blobs)} blobs; give one per "
                           f"blob, or one .npz")
    net = Net(args.model, args.phase, weights=args.weights)
    labels = "label" if to_npz and "label" in net.blobs and "label" not in blobs else None
    features = extract_features(net, blobs + ([labels] if labels else []), args.iterations)
    if to_npz:
        np.savez(outs[0], **features)
        print(f"Wrote {outs[0]} ({', '.join(f'{k} {v.shape}' for k, v in features.items())})")
        return 0
    for blob, out in zip(blobs, outs):
        write_db(out, feature_datums(features[blob]), args.backend)
        print(f"Wrote {out} ({len(features[blob])} items of '{blob}')")
    return 0


def _examples_arguments(p):
    p.add_argument("dir", metavar="DIR", help="folder to copy them into (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite example files that exist in DIR")


@command("examples", _examples_arguments, help="copy the example nets and solvers into a folder",
         description=(
    "Copy the example nets (DIR/prototxt) and solvers (DIR/solvers) shipped with layerforge. "
    "Their paths (prototxt/..., data/mnist/..., runs/...) are relative to DIR; run them from "
    "there, or from anywhere: a relative path that does not exist in the working directory is "
    "looked up beside the file that names it, then in the folder above."))
def cmd_examples(args):
    from layerforge.tools.examples import copy_examples

    written = copy_examples(args.dir, args.force)
    print(f"Copied {len(written)} files to {args.dir}: "
          f"{', '.join(str(p.relative_to(args.dir)) for p in written)}")
    print(f"Next: cd {args.dir} && layerforge data mnist --out data/mnist && "
          "layerforge train --solver solvers/mnist_siamese_solver.prototxt")
    return 0


# ---------------------------------------------------------------- files

def _upgrade_arguments(p):
    p.add_argument("source", metavar="NET_OR_WEIGHTS", help="a net prototxt or a .caffemodel in Caffe's V0/V1 format")
    p.add_argument("out", metavar="OUT", help="where to write the upgraded file (same format as the input)")


@command("upgrade", _upgrade_arguments, help="upgrade a legacy V0/V1 net or weights file", description=(
    "Caffe's upgrade_net_proto_text and upgrade_net_proto_binary: rewrite a V0/V1 net prototxt "
    "(`layers { type: CONVOLUTION }`) or .caffemodel in the current format, as every command "
    "does when it reads one. A .caffemodel is written binary, anything else as prototxt text."))
def cmd_upgrade(args):
    from layerforge.upgrade import upgrade_file

    changed = upgrade_file(args.source, args.out)
    print(f"Wrote {args.out}" + ("" if changed else f" ({args.source} was already in the current format)"))
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
