"""The Omniglot recipe cross-validated over the eight background alphabets, two held out at a time.

`make omniglot` holds out Balinese and Early_Aramaic. One pair of alphabets says little about
characters of unseen alphabets in general, so this script trains the same recipe
(solvers/omniglot_siamese_solver.prototxt and its net, or the solver given by --solver)
four times, each time on six alphabets, and scores it with 20-way within-alphabet trials on
the other two (`layerforge oneshot --alphabets`, 1000 trials, seed 0). The data is built at the
size of the net's input (its RUN Input layer "input_data"). Per fold it rewrites
the data sources, the classifier's width (the number of training characters) and the schedule
(`--iters` iterations, the learning-rate step at 3/4 of them, one snapshot at the end), and
prints each fold's accuracy and their mean.

Tagalog has 17 characters, too few for a 20-way trial, so its fold scores Sanskrit only.

`--all` trains the recipe once on all eight alphabets (242 characters, more than any fold) and
scores nothing: that is the model for characters of other alphabets, such as Omniglot's
evaluation set (`make omniglot-all`).

Usage (from the repository root, LAYERFORGE_OMNIGLOT set):
    python benchmarks/omniglot_folds.py [--folds 0,1,2,3 | --all] [--iters 3000] [--solver S]
        [--out runs/omniglot_folds]
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from layerforge import io  # noqa: E402
from layerforge.data import DatasetError  # noqa: E402
from layerforge.data.omniglot import build_omniglot_lmdb  # noqa: E402
from layerforge.proto import layerforge_pb2 as pb  # noqa: E402

DEPLOY = os.path.join(ROOT, "prototxt", "omniglot_siamese_deploy.prototxt")
SOLVER = os.path.join(ROOT, "solvers", "omniglot_siamese_solver.prototxt")
FOLDS = [("Balinese", "Early_Aramaic"), ("Greek", "Korean"), ("Japanese_(katakana)", "Latin"),
         ("Sanskrit", "Tagalog")]
ALPHABETS = [alphabet for fold in FOLDS for alphabet in fold]


def layerforge(*args, log=None):
    """Run the layerforge CLI; its last output line (the log goes to `log` when given)."""
    command = [sys.executable, "-m", "layerforge", *args]
    if log:
        with open(log, "w") as out:
            if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode:
                sys.exit(f"omniglot_folds: layerforge {args[0]} failed; see {log}")
        return ""
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        sys.exit(f"omniglot_folds: layerforge {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().splitlines()[-1]


def fold_files(folder, train_lmdb, val_lmdb, classes, iters, solver_path=SOLVER):
    """The solver and its net, pointed at this fold's data and snapshot folder.

    With no `val_lmdb` (nothing held out) the net keeps only its TRAIN data and the solver tests
    nothing."""
    solver = io.read_solver(solver_path)
    net = io.read_net(solver.net)
    for layer in list(net.layer):
        if layer.type == "Data":
            train = any(rule.phase == pb.TRAIN for rule in layer.include)
            if train or val_lmdb:
                layer.data_param.source = str(train_lmdb if train else val_lmdb)
            else:
                net.layer.remove(layer)
        if layer.name == "classifier":
            layer.inner_product_param.num_output = classes
    solver.ClearField("net")
    solver.net_param.CopyFrom(net)
    solver.max_iter = iters
    solver.ClearField("stepvalue")
    solver.stepvalue.append(iters * 3 // 4)
    solver.snapshot = iters
    if val_lmdb:
        solver.test_interval = iters + 1
    else:
        for field in ("test_iter", "test_interval", "test_initialization"):
            solver.ClearField(field)
    solver.snapshot_prefix = os.path.join(folder, "omniglot")
    path = os.path.join(folder, "solver.prototxt")
    io.write_text(solver, path)
    return path, f"{solver.snapshot_prefix}_iter_{iters}.caffemodel"


def input_size(net):
    """(height, width) of the images an Omniglot recipe's NetParameter takes: its RUN Input "input_data"."""
    shape = next(layer for layer in net.layer if layer.name == "input_data").input_param.shape[0].dim
    return shape[2], shape[3]


def train_recipe(folder, held_out, iters, solver_path):
    """Train the recipe on every alphabet but `held_out`: its weights, characters and seconds."""
    train = [a for a in ALPHABETS if a not in held_out]
    size = input_size(io.read_net(io.read_solver(solver_path).net))
    try:
        train_lmdb, train_data = build_omniglot_lmdb(os.path.join(folder, "train"), size=size, alphabets=train)
        val_lmdb = None
        if held_out:
            val_lmdb, _ = build_omniglot_lmdb(os.path.join(folder, "val"), size=size, alphabets=list(held_out))
    except DatasetError as err:
        sys.exit(f"omniglot_folds: {err}")
    classes = len(train_data.names)
    solver, weights = fold_files(folder, train_lmdb, val_lmdb, classes, iters, solver_path)
    start = time.perf_counter()
    layerforge("train", "--solver", solver, log=os.path.join(folder, "train.log"))
    return weights, classes, time.perf_counter() - start


def run_fold(held_out, out, iters, solver_path):
    weights, classes, seconds = train_recipe(os.path.abspath(os.path.join(out, "-".join(held_out))), held_out,
                                             iters, solver_path)
    result = layerforge("oneshot", "--model", DEPLOY, "--weights", weights, "--alphabets", ",".join(held_out),
                        "--ways", "20", "--trials", "1000")
    accuracy = float(result.split(": ")[1].split()[0])
    print(f"held out {', '.join(held_out)} (trained on {classes} characters, {seconds:.0f} s): {result}",
          flush=True)
    return accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", default="0,1,2,3", help="which of the four folds (default: all)")
    parser.add_argument("--all", action="store_true",
                        help="train once on all eight alphabets instead, scoring nothing (writes into OUT)")
    parser.add_argument("--iters", type=int, default=3000, help="training iterations (default: 3000)")
    parser.add_argument("--solver", default=SOLVER, help="the recipe's solver (default: the Siamese recipe's)")
    parser.add_argument("--out", default=os.path.join(ROOT, "runs", "omniglot_folds"))
    args = parser.parse_args()
    if args.all:
        weights, classes, seconds = train_recipe(os.path.abspath(args.out), (), args.iters, args.solver)
        print(f"trained on all eight alphabets ({classes} characters, {seconds:.0f} s): {weights}")
        return
    scores = [run_fold(FOLDS[int(i)], args.out, args.iters, args.solver) for i in args.folds.split(",")]
    print(f"mean 20-way one-shot accuracy over {len(scores)} folds: {sum(scores) / len(scores):.3f}")


if __name__ == "__main__":
    main()
