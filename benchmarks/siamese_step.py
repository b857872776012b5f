"""One training iteration of the MNIST Siamese net: layerforge against PyTorch CPU.

Usage: python benchmarks/siamese_step.py [--iterations N] [--rounds R] [--no-torch]

The net is prototxt/mnist_siamese_train_test.prototxt (TRAIN), fed by its Data layer from
an LMDB built in a temporary folder: real MNIST when $LAYERFORGE_MNIST names the IDX files,
else random synthetic digits. The PyTorch model is the same twin branch (conv 20 -> max
pool -> conv 50 -> max pool -> ip 500 -> ReLU -> ip 10 -> ip 2) called once per twin, the
same contrastive loss (margin 2) and SGD with momentum 0.9 and lr_mult 2 on biases.

1. Agreement: both start from layerforge's weights and see the batch layerforge's Data
   layer produced; the loss and every parameter gradient must agree within float32
   rounding: |loss_lf - loss_torch| <= 1e-5 * max(1, |loss|), and per parameter
   ||g_lf - g_torch|| <= 1e-4 * (largest gradient norm of its layer) (different summation
   orders in float32; the biases of ip2 and feat feed only the difference of the twins, so
   their exact gradient is 0 and both frameworks give rounding noise around it).
2. Speed: each framework runs in its own child process (so the two thread pools never
   compete), alternately for R rounds; each round times N iterations (forward + backward
   + update, both twins) after warm-up. The median round is reported. An iteration of
   layerforge is Solver.step(1) and includes its Data layer; PyTorch gets a fixed batch.
   "torch" calls the branch once per twin, as the prototxt (and most Siamese code) does;
   "torch-2n" concatenates the twins into one batch, as layerforge's Net does by itself.
3. layerforge's per-layer breakdown (`layerforge time`), peak RSS of each child, and the
   cold start: a fresh process importing layerforge, building the solver and running the
   first iteration, with the Numba cache warm (and how many kernels were compiled anyway).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "prototxt" / "mnist_siamese_train_test.prototxt"
SOLVER = ROOT / "solvers" / "mnist_siamese_solver.prototxt"
PAIRS = 64
LOSS_RTOL, GRAD_RTOL = 1e-5, 1e-4
BRANCH = ["conv1", "conv2", "ip1", "ip2", "feat"]


def make_lmdb(scratch):
    from layerforge.data import build_mnist_lmdbs
    from layerforge.data.store import datums, write_lmdb
    if os.environ.get("LAYERFORGE_MNIST"):
        return build_mnist_lmdbs(scratch, progress=False)[0], "MNIST"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6400, 1, 28, 28), dtype=np.uint8)
    return write_lmdb(Path(scratch) / "synthetic_lmdb", datums(images, rng.integers(0, 10, 6400))), "synthetic"


def make_solver(lmdb):
    """The tutorial's SGD solver on the Siamese TRAIN net reading `lmdb`; no tests, snapshots or logs."""
    from layerforge import io
    from layerforge.solvers import get_solver
    net = io.read_net(str(MODEL))
    for layer in net.layer:
        if layer.type == "Data":
            layer.data_param.source = str(lmdb)
    param = io.read_solver(str(SOLVER))
    param.ClearField("net")
    param.net_param.CopyFrom(net)
    del param.test_iter[:]
    param.test_interval = param.display = param.snapshot = 0
    param.snapshot_after_train = False
    return get_solver(param)


def torch_model(params=None):
    """The twin branch as a torch Module, with layerforge's weights when `params` is given."""
    import torch
    from torch import nn
    branch = nn.ModuleDict({"conv1": nn.Conv2d(1, 20, 5), "conv2": nn.Conv2d(20, 50, 5),
                            "ip1": nn.Linear(800, 500), "ip2": nn.Linear(500, 10), "feat": nn.Linear(10, 2)})
    if params is not None:
        with torch.no_grad():
            for name in BRANCH:
                branch[name].weight.copy_(torch.from_numpy(params[name][0].data))
                branch[name].bias.copy_(torch.from_numpy(params[name][1].data))
    return branch


def torch_forward(branch, x):
    import torch.nn.functional as F
    x = F.max_pool2d(branch["conv1"](x), 2, 2)
    x = F.max_pool2d(branch["conv2"](x), 2, 2)
    x = F.relu(branch["ip1"](x.flatten(1)))
    return branch["feat"](branch["ip2"](x))


def torch_loss(branch, pair, similar, margin=2.0, one_batch=False):
    """The contrastive loss; `one_batch` runs both twins as one batch of 2N (as layerforge does)."""
    import torch
    if one_batch:
        a, b = torch_forward(branch, pair.transpose(0, 1).reshape(-1, 1, 28, 28)).chunk(2)
    else:
        a, b = torch_forward(branch, pair[:, :1]), torch_forward(branch, pair[:, 1:])
    dist_sq = ((a - b) ** 2).sum(1)
    hinge = torch.clamp(margin - torch.sqrt(dist_sq), min=0.0)
    return torch.where(similar, dist_sq, hinge * hinge).sum() / (2 * pair.shape[0])


def check_agreement(lmdb):
    """Loss and gradients of one forward-backward, layerforge against torch (same weights, same batch)."""
    import torch
    net = make_solver(lmdb).net
    net.clear_param_diffs()
    loss = net.forward_backward()
    pair = torch.from_numpy(net.blobs["pair_data"].data.copy())
    labels = net.blobs["sim"].data
    branch = torch_model(net.params)
    t_loss = torch_loss(branch, pair, torch.from_numpy(labels[:, 0] == labels[:, 1]))
    t_loss.backward()
    rows = [("loss", abs(loss - t_loss.item()) / max(1.0, abs(t_loss.item())), LOSS_RTOL)]
    for name in BRANCH:
        tensors = (branch[name].weight, branch[name].bias)
        scale = max(max(np.linalg.norm(t.grad.numpy()) for t in tensors), 1e-30)
        for blob, tensor in zip(net.params[name], tensors):
            error = np.linalg.norm(blob.diff - tensor.grad.numpy()) / scale
            rows.append((f"{name} {'bias' if blob.data.ndim == 1 else 'weight'} grad", float(error), GRAD_RTOL))
    print(f"Agreement (loss {loss:.6f} layerforge, {t_loss.item():.6f} torch): relative error / tolerance")
    for name, err, tol in rows:
        print(f"  {name:18} {err:9.2e} / {tol:.0e}  {'ok' if err <= tol else 'MISMATCH'}")
    return all(err <= tol for _, err, tol in rows)


def peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_layerforge(lmdb, iterations, warmup, breakdown):
    solver = make_solver(lmdb)
    solver.step(warmup)
    start = time.perf_counter()
    solver.step(iterations)
    result = {"ms": 1000 * (time.perf_counter() - start) / iterations, "rss_mb": peak_rss_mb()}
    if breakdown:
        from layerforge.tools.timing import time_net
        result["breakdown"] = time_net(solver.net, iterations, warmup=warmup).lines()
    return result


def child_torch(lmdb, iterations, warmup, breakdown, one_batch=False):
    import torch
    solver = make_solver(lmdb)  # only for its initial weights and one batch of data
    solver.net.forward()
    labels = solver.net.blobs["sim"].data
    pair = torch.from_numpy(solver.net.blobs["pair_data"].data.copy())
    similar = torch.from_numpy(labels[:, 0] == labels[:, 1])
    branch = torch_model(solver.net.params)
    weights = [m.weight for m in branch.values()]
    biases = [m.bias for m in branch.values()]
    lr = solver.param.base_lr
    optimizer = torch.optim.SGD([{"params": weights, "lr": lr}, {"params": biases, "lr": 2 * lr}],
                                lr=lr, momentum=solver.param.momentum)

    def step():
        optimizer.zero_grad(set_to_none=False)
        torch_loss(branch, pair, similar, one_batch=one_batch).backward()
        optimizer.step()
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return {"ms": 1000 * (time.perf_counter() - start) / iterations, "rss_mb": peak_rss_mb(),
            "threads": torch.get_num_threads()}


def child_cold(lmdb):
    """Seconds to import layerforge, and to build the solver and run its first iteration."""
    start = time.perf_counter()
    import layerforge  # noqa: F401  (the import is what is timed)
    from layerforge import kernels
    imported = time.perf_counter()
    solver = make_solver(lmdb)
    solver.step(1)
    done = time.perf_counter()
    import importlib
    import pkgutil
    misses = 0
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"layerforge.kernels.{info.name}")
        for value in vars(module).values():
            stats = getattr(value, "stats", None)
            if stats is not None and hasattr(stats, "cache_misses"):
                misses += sum(stats.cache_misses.values())
    return {"import_s": imported - start, "first_iteration_s": done - imported, "compiled": misses}


def run_child(kind, lmdb, args, breakdown=False):
    command = [sys.executable, __file__, "--child", kind, "--lmdb", str(lmdb),
               "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    if breakdown:
        command.append("--breakdown")
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--child", choices=["layerforge", "torch", "torch-2n", "cold"], help=argparse.SUPPRESS)
    parser.add_argument("--lmdb", help=argparse.SUPPRESS)
    parser.add_argument("--breakdown", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = {"layerforge": child_layerforge, "torch": child_torch,
                 "torch-2n": lambda *a: child_torch(*a, one_batch=True)}.get(args.child)
        result = child_cold(args.lmdb) if child is None else child(args.lmdb, args.iterations, args.warmup,
                                                                      args.breakdown)
        print(json.dumps(result))
        return 0
    try:
        import torch
    except ImportError:
        torch = None
    if args.no_torch:
        torch = None
    with tempfile.TemporaryDirectory() as scratch:
        lmdb, kind = make_lmdb(scratch)
        print(f"Siamese MNIST step, {PAIRS} pairs, {kind} data, {os.cpu_count()} CPUs")
        agree = True
        if torch is not None:
            print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
            agree = check_agreement(lmdb)
        runs = {"layerforge": [], "torch": [], "torch-2n": []}
        for r in range(args.rounds):
            runs["layerforge"].append(run_child("layerforge", lmdb, args, breakdown=r == 0))
            if torch is not None:
                runs["torch"].append(run_child("torch", lmdb, args))
                runs["torch-2n"].append(run_child("torch-2n", lmdb, args))
        print(f"\nms per iteration (forward + backward + update, both twins), median of {args.rounds} "
              f"rounds of {args.iterations} iterations:")
        medians = {}
        for name, results in runs.items():
            if not results:
                continue
            times = [r["ms"] for r in results]
            medians[name] = statistics.median(times)
            print(f"  {name:10} {medians[name]:7.2f} ms  {2 * PAIRS * 1000 / medians[name]:8.0f} images/s  "
                  f"(rounds: {', '.join(f'{t:.2f}' for t in times)}; peak RSS "
                  f"{max(r['rss_mb'] for r in results):.0f} MB)")
        if "torch" in medians:
            print(f"  ratio layerforge / torch: {medians['layerforge'] / medians['torch']:.3f}   (torch-2n: the "
                  f"same torch model fed both twins as one batch of 2N: ratio "
                  f"{medians['layerforge'] / medians['torch-2n']:.3f})")
        print("\nlayerforge per layer (`layerforge time`, forward + backward without the update):")
        print("\n".join("  " + line for line in runs["layerforge"][0]["breakdown"]))
        run_child("cold", lmdb, args)  # makes sure the cache is warm
        cold = run_child("cold", lmdb, args)
        print(f"\nCold start with a warm Numba cache: import {cold['import_s']:.2f} s, solver + first "
              f"iteration {cold['first_iteration_s']:.2f} s, kernels compiled: {cold['compiled']}")
        return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
