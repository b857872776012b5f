"""More workloads than the Siamese MNIST step: layerforge against PyTorch CPU, side by side.

Usage: python benchmarks/workloads.py [--workloads NAME ...] [--batch NAME=B ...]
           [--iterations N] [--warmup W] [--rounds R] [--quick] [--no-torch] [--cold-start] [--layers]

Workloads (default: all):
  lenet       training step of prototxt/lenet_train_test.prototxt (TRAIN), batch 64;
  omniglot    training step of prototxt/omniglot_siamese_train_test.prototxt (TRAIN, 64 pairs of
              images at the net's input size: contrastive loss + 196-way classifier, BatchNorm + Scale);
  koch        training step of prototxt/omniglot_koch_train_test.prototxt (TRAIN, 105x105
              pairs), 8 pairs by default;
  caffenet    inference of BVLC's CaffeNet deploy net (tests/configs/bvlc_caffenet_deploy.prototxt
              with its input set to Bx3x227x227), batches 1 and 32, random weights;
  mnist-deploy  inference of prototxt/mnist_siamese_deploy.prototxt (RUN, one branch up to
              "feat"; its Decode layer, a nearest-centroid lookup needing trained centroids, is
              left out): batch 1 (latency) and 1000 (throughput);
  batchnorm   BatchNorm + Scale forward + backward on 64x32x28x28 (TRAIN: batch statistics)
              against torch's batch_norm + affine (as torch.nn.BatchNorm2d computes it);
  lrn         LRN (ACROSS_CHANNELS, local_size 5, CaffeNet's alpha/beta) forward + backward on
              32x96x27x27 against torch.nn.functional.local_response_norm (what
              torch.nn.LocalResponseNorm runs).

Training steps: the nets' Data layers are replaced by Input layers holding one fixed batch
of synthetic data (uniform pixels in [0, 1) as after the Data layers' scale, random labels;
half of the Omniglot pairs share their class), so the time is forward + backward + SGD
update (momentum 0.9, lr_mult as in the prototxt, no weight decay) without data loading.
The PyTorch side (benchmarks/torch_net.py) runs the same layers on the same batch, starting
from layerforge's initial weights. Inference and micro-benchmarks use the same random
weights and inputs in both.

Before timing, each workload checks agreement in one process: the loss (training), the
outputs (inference) or the top and bottom gradient (micro) of layerforge and PyTorch must
agree within float32 rounding (relative 1e-4; gradients relative to the largest gradient
norm of their layer). Timing: each framework runs in its own child process, alternately,
for R rounds of N iterations after W of warm-up; the median round is reported, and the
ratio layerforge / PyTorch of the medians. `--cold-start`: a fresh process importing
layerforge, building the LeNet solver and running its first iteration, twice with the same
new, empty NUMBA_CACHE_DIR: the first run after an install (everything compiles), then the
second (the cache is warm), with how many kernels each compiled. `--layers`: for inference
workloads, also each layer's forward time alone (the whole pass too), per framework.
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
sys.path.insert(0, str(ROOT))
RTOL = 1e-4
BASE_LR, MOMENTUM = 0.01, 0.9

MICRO = {
    "batchnorm": ("data", (64, 32, 28, 28), """
        layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }
        layer { name: "scale" type: "Scale" bottom: "bn" top: "scale" scale_param { bias_term: true
                filler { type: "uniform" min: 0.5 max: 1.5 } bias_filler { type: "uniform" min: -0.5 max: 0.5 } } }"""),
    "lrn": ("data", (32, 96, 27, 27), """
        layer { name: "norm" type: "LRN" bottom: "data" top: "norm"
                lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }"""),
}
WORKLOADS = {   # name: (kind, model, default batches)
    "lenet": ("train", "prototxt/lenet_train_test.prototxt", [64]),
    "omniglot": ("train", "prototxt/omniglot_siamese_train_test.prototxt", [64]),
    "koch": ("train", "prototxt/omniglot_koch_train_test.prototxt", [8]),
    "caffenet": ("infer", "tests/configs/bvlc_caffenet_deploy.prototxt", [1, 32]),
    "mnist-deploy": ("infer", "prototxt/mnist_siamese_deploy.prototxt", [1, 1000]),
    "batchnorm": ("micro", None, [64]),
    "lrn": ("micro", None, [32]),
}
QUICK_BATCHES = {"lenet": [4], "omniglot": [4], "koch": [2], "caffenet": [1, 2], "mnist-deploy": [1, 8],
                 "batchnorm": [2], "lrn": [2]}


def omniglot_size():
    """The image side the Omniglot recipe's net takes, as omniglot_folds reads it."""
    from layerforge import io
    from omniglot_folds import input_size
    return input_size(io.read_net(str(ROOT / WORKLOADS["omniglot"][1])))[0]


def train_inputs(name, batch, rng):
    """Synthetic blobs for the Input layers that replace a training net's Data layers."""
    if name == "lenet":
        return {"data": rng.random((batch, 1, 28, 28)), "label": rng.integers(0, 10, batch)}
    size = omniglot_size() if name == "omniglot" else 105
    pairs = rng.random((batch, 2, size, size))
    same = rng.random(batch) < 0.5
    if name == "omniglot":
        first = rng.integers(0, 196, batch)
        other = np.where(same, first, (first + rng.integers(1, 196, batch)) % 196)
        return {"pair_data": pairs, "pair_label": np.stack([first, other], 1)}
    return {"pair_data": pairs, "sim": same.astype(np.float64)}


def train_net_param(model, inputs):
    """The TRAIN net of `model` with each TRAIN Data layer replaced by an Input layer of `inputs`' shapes."""
    from layerforge import io
    from layerforge.proto import layerforge_pb2 as pb
    source = io.read_net(str(ROOT / model))
    param = pb.NetParameter()
    param.CopyFrom(source)
    del param.layer[:]
    for layer in source.layer:
        if layer.type != "Data":
            param.layer.add().CopyFrom(layer)
        elif any(rule.phase == pb.TRAIN for rule in layer.include):
            feed = param.layer.add(name=layer.name, type="Input", top=list(layer.top))
            feed.include.add(phase=pb.TRAIN)
            for top in layer.top:
                feed.input_param.shape.add(dim=list(inputs[top].shape))
    return param


def make_solver(model, inputs):
    from layerforge.proto import layerforge_pb2 as pb
    from layerforge.solvers import get_solver
    param = pb.SolverParameter(base_lr=BASE_LR, momentum=MOMENTUM, lr_policy="fixed", max_iter=10 ** 9,
                               display=0, snapshot=0, snapshot_after_train=False, random_seed=1)
    param.net_param.CopyFrom(train_net_param(model, inputs))
    solver = get_solver(param)
    for name, value in inputs.items():
        solver.net.blobs[name].data[...] = value
    return solver


def infer_net(name, batch, rng):
    """The deploy net at `batch` with random (He-scaled) weights, and its input {name: array}."""
    from layerforge import io
    from layerforge.net import Net
    from layerforge.proto import layerforge_pb2 as pb
    param = io.read_net(str(ROOT / WORKLOADS[name][1]))
    phase = pb.RUN if name == "mnist-deploy" else pb.TEST
    if name == "mnist-deploy":
        keep = [layer for layer in param.layer if layer.type != "Decode"]
        del param.layer[:]
        param.layer.extend(keep)
    shape = (batch, 3, 227, 227) if name == "caffenet" else (batch, 1, 28, 28)
    for layer in param.layer:
        if layer.type == "Input":
            layer.ClearField("transform_param")   # the input below is already scaled
            layer.input_param.ClearField("shape")
            layer.input_param.shape.add(dim=list(shape))
    net = Net(param, phase=phase)
    for blobs in net.params.values():
        weight = blobs[0].data
        weight[...] = rng.normal(0, np.sqrt(2 / max(1, weight[0].size)), weight.shape)
        for bias in blobs[1:]:
            bias.data[...] = rng.normal(0, 0.01, bias.data.shape)
    data = rng.random(shape)
    net.blobs[net.inputs[0]].data[...] = data
    return net, {net.inputs[0]: data}


def micro_net(name, batch, rng):
    from layerforge.net import Net
    from layerforge.proto import layerforge_pb2 as pb
    from google.protobuf import text_format
    top, shape, layers = MICRO[name]
    shape = (batch, *shape[1:])
    text = f'layer {{ name: "input" type: "Input" top: "{top}" input_param {{ shape {{ {" ".join(f"dim: {d}" for d in shape)} }} }} }}' + layers
    net = Net(text_format.Parse(text, pb.NetParameter()), phase=pb.TRAIN)
    data = rng.standard_normal(shape) * 2 + 1
    net.blobs[top].data[...] = data
    grad = rng.standard_normal(net.blobs[net.outputs[0]].shape)
    return net, {top: data}, grad


def layerforge_micro_step(net, grad):
    """Forward, then backward from `grad` on the last top, layer by layer."""
    net.forward()
    net.blobs[net.outputs[0]].diff[...] = grad
    for entry in reversed(net.entries[1:]):
        entry.layer.backward(entry.top, [True] * len(entry.bottom), entry.bottom)


def build(name, batch, framework):
    """(step function, images per step) for one workload in one framework."""
    kind = WORKLOADS[name][0]
    rng = np.random.default_rng(0)
    if kind == "train":
        inputs = train_inputs(name, batch, rng)
        solver = make_solver(WORKLOADS[name][1], inputs)
        images = batch * (2 if name != "lenet" else 1)
        if framework == "layerforge":
            return (lambda: solver.step(1)), images
        from torch_net import TorchNet, to_torch
        tnet = TorchNet(solver.net)
        feeds = {k: to_torch(v.astype(np.float32)) for k, v in inputs.items()}
        optimizer = tnet.optimizer(BASE_LR, MOMENTUM)

        def step():
            optimizer.zero_grad(set_to_none=False)
            tnet.forward(feeds)[1].backward()
            optimizer.step()
        return step, images
    if kind == "infer":
        net, inputs = infer_net(name, batch, rng)
        if framework == "layerforge":
            return net.forward, batch
        import torch
        from torch_net import TorchNet, to_torch
        tnet = TorchNet(net)
        feeds = {k: to_torch(v.astype(np.float32)) for k, v in inputs.items()}

        def infer():
            with torch.inference_mode():
                tnet.forward(feeds)
        return infer, batch
    net, inputs, grad = micro_net(name, batch, rng)
    if framework == "layerforge":
        return (lambda: layerforge_micro_step(net, grad)), batch
    from torch_net import TorchNet, to_torch
    tnet = TorchNet(net)
    feeds = {k: to_torch(v.astype(np.float32)).requires_grad_() for k, v in inputs.items()}
    tgrad = to_torch(grad.astype(np.float32))

    def micro():
        blobs, _ = tnet.forward(feeds)
        blobs[net.outputs[0]].backward(tgrad)
    return micro, batch


def _relative(a, b, scale=None):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(scale if scale is not None else np.linalg.norm(b), 1e-30))


def check_agreement(name, batch):
    """[(what, relative error)] between layerforge and torch for one workload (same weights and data)."""
    import torch
    from torch_net import TorchNet, to_torch
    kind = WORKLOADS[name][0]
    rng = np.random.default_rng(0)
    rows = []
    if kind == "train":
        inputs = train_inputs(name, batch, rng)
        net = make_solver(WORKLOADS[name][1], inputs).net
        tnet = TorchNet(net)
        net.clear_param_diffs()
        loss = net.forward_backward()
        t_loss = tnet.forward({k: to_torch(v.astype(np.float32)) for k, v in inputs.items()})[1]
        t_loss.backward()
        rows.append(("loss", abs(loss - t_loss.item()) / max(1.0, abs(t_loss.item()))))
        for layer, blobs in net.params.items():
            learnable = [b for b in blobs if id(b) in tnet.tensors and tnet.parameter(b).grad is not None]
            if learnable:
                scale = max(np.linalg.norm(tnet.parameter(b).grad.numpy()) for b in learnable)
                rows.append((f"{layer} grads", max(_relative(b.diff, tnet.parameter(b).grad.numpy(), scale)
                                                   for b in learnable)))
    elif kind == "infer":
        net, inputs = infer_net(name, batch, rng)
        outputs = net.forward()
        with torch.inference_mode():
            blobs, _ = TorchNet(net).forward({k: to_torch(v.astype(np.float32)) for k, v in inputs.items()})
        for output, value in outputs.items():
            rows.append((f"output {output}", _relative(value, blobs[output].numpy())))
    else:
        net, inputs, grad = micro_net(name, batch, rng)
        layerforge_micro_step(net, grad)
        feeds = {k: to_torch(v.astype(np.float32)).requires_grad_() for k, v in inputs.items()}
        blobs, _ = TorchNet(net).forward(feeds)
        top = net.outputs[0]
        blobs[top].backward(to_torch(grad.astype(np.float32)))
        rows.append((f"top {top}", _relative(net.blobs[top].data, blobs[top].detach().numpy())))
        for k, value in feeds.items():
            rows.append((f"bottom {k} grad", _relative(net.blobs[k].diff, value.grad.numpy())))
    return rows


def peak_rss_mb():
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, it starts afresh at exec,
    so a child does not report its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_time(name, batch, framework, iterations, warmup):
    step, images = build(name, batch, framework)
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    ms = 1000 * (time.perf_counter() - start) / iterations
    return {"ms": ms, "images_per_s": 1000 * images / ms, "rss_mb": peak_rss_mb()}


def child_layers(name, batch, framework, iterations, warmup):
    """Median forward ms of each layer of an inference workload, timed one layer at a time
    ([name, type, ms] rows; a Convolution's type names its algorithm), and of the whole pass."""
    net, inputs = infer_net(name, batch, np.random.default_rng(0))
    if framework == "layerforge":
        from layerforge.kernels.threads import blas_on_one_thread
        calls = [lambda i=i: net.forward_layer(i) for i in range(len(net.entries))]
        scope, whole = blas_on_one_thread, net.forward
    else:
        import torch
        from torch_net import TorchNet, to_torch
        tnet = TorchNet(net)
        blobs = {k: to_torch(v.astype(np.float32)) for k, v in inputs.items()}

        def call(entry):
            if entry.param.type != "Input":
                tops = tnet._layer(entry.param.type, entry.param, entry.layer, [blobs[b] for b in entry.bottom_names])
                blobs.update(zip(entry.top_names, tops))
        calls = [lambda e=e: call(e) for e in net.entries]
        scope, whole = torch.inference_mode, lambda: tnet.forward(blobs)
    times, totals = [[] for _ in calls], []
    with scope():
        for step in range(warmup + iterations):
            for i, layer_call in enumerate(calls):
                start = time.perf_counter()
                layer_call()
                times[i].append(time.perf_counter() - start)
            start = time.perf_counter()
            whole()
            totals.append(time.perf_counter() - start)
    rows = []
    for entry, layer_times in zip(net.entries, times):
        algorithm = getattr(entry.layer, "algorithm", None) if framework == "layerforge" else None
        kind = f"{entry.param.type} ({algorithm})" if algorithm else entry.param.type
        rows.append([entry.param.name, kind, 1000 * statistics.median(layer_times[warmup:])])
    return {"layers": rows, "ms": 1000 * statistics.median(totals[warmup:])}


def print_layers(runs):
    """Per-layer medians over the rounds of each framework, side by side with the ratio."""
    medians = {f: [statistics.median(r["layers"][i][2] for r in results) for i in range(len(results[0]["layers"]))]
               for f, results in runs.items()}
    names = runs["layerforge"][0]["layers"]
    width = max(len(kind) for _, kind, _ in names) + max(len(name) for name, _, _ in names) + 3
    print(f"  {'layer':{width}} {'layerforge ms':>13}" + (f" {'torch ms':>9} {'ratio':>6}" if "torch" in runs else ""))
    for i, (name, kind, _) in enumerate(names):
        row = f"  {f'{name} {kind}':{width}} {medians['layerforge'][i]:13.3f}"
        if "torch" in runs:
            torch_ms = medians["torch"][i]
            row += f" {torch_ms:9.3f} {medians['layerforge'][i] / torch_ms:6.2f}" if torch_ms > 0 else f" {torch_ms:9.3f}"
        print(row)
    totals = {f: statistics.median(r["ms"] for r in results) for f, results in runs.items()}
    sums = {f: sum(values) for f, values in medians.items()}
    print(f"  {'sum of layers':{width}} {sums['layerforge']:13.3f}" + (f" {sums['torch']:9.3f}" if "torch" in runs else ""))
    print(f"  {'whole pass':{width}} {totals['layerforge']:13.3f}" + (f" {totals['torch']:9.3f} "
          f"{totals['layerforge'] / totals['torch']:6.2f}" if "torch" in runs else ""))


def child_cold():
    """Seconds to import layerforge, and to build the LeNet solver and run its first iteration."""
    start = time.perf_counter()
    import layerforge  # noqa: F401  (the import is what is timed)
    imported = time.perf_counter()
    solver = make_solver(WORKLOADS["lenet"][1], train_inputs("lenet", 64, np.random.default_rng(0)))
    solver.step(1)
    done = time.perf_counter()
    import importlib
    import pkgutil
    from layerforge import kernels
    misses = 0
    for info in pkgutil.iter_modules(kernels.__path__):
        module = importlib.import_module(f"layerforge.kernels.{info.name}")
        for value in vars(module).values():
            stats = getattr(getattr(value, "kernel", value), "stats", None)
            if stats is not None and hasattr(stats, "cache_misses"):
                misses += sum(stats.cache_misses.values())
    return {"import_s": imported - start, "first_iteration_s": done - imported, "compiled": misses}


def run_child(*arguments, env=None):
    command = [sys.executable, __file__, "--child", *map(str, arguments)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def parse_batches(values, quick):
    batches = {name: list(QUICK_BATCHES[name] if quick else WORKLOADS[name][2]) for name in WORKLOADS}
    for value in values:
        name, _, sizes = value.partition("=")
        if name not in WORKLOADS or not sizes:
            raise SystemExit(f"--batch {value}: expected NAME=B[,B...] with NAME in {', '.join(WORKLOADS)}")
        batches[name] = [int(s) for s in sizes.split(",")]
    return batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n")[2])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--batch", nargs="*", default=[], metavar="NAME=B[,B...]",
                        help="batch sizes of a workload (pairs for omniglot and koch)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="tiny batches, 2 iterations, 1 round: checks that everything runs (no figures)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--cold-start", action="store_true",
                        help="also time import + first LeNet iteration in a fresh process, on an empty "
                             "Numba cache and then on the warm one")
    parser.add_argument("--layers", action="store_true",
                        help="inference workloads: also time each layer alone (median of the iterations, "
                             "then of the rounds), both frameworks side by side")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "cold":
            print(json.dumps(child_cold()))
        else:
            name, batch, framework, iterations, warmup, *layers = args.child
            child = child_layers if layers else child_time
            print(json.dumps(child(name, int(batch), framework, int(iterations), int(warmup))))
        return 0
    if args.quick:
        args.iterations, args.warmup, args.rounds = 2, 1, 1
    batches = parse_batches(args.batch, args.quick)
    torch = None
    if not args.no_torch:
        import torch
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {os.cpu_count()} CPUs")
    agree = True
    for name in args.workloads:
        kind = WORKLOADS[name][0]
        for batch in batches[name]:
            print(f"\n{name} ({kind}), batch {batch}:", flush=True)
            if torch is not None:
                rows = check_agreement(name, batch)
                ok = all(err <= RTOL for _, err in rows)
                agree &= ok
                worst = max(rows, key=lambda row: row[1])
                print(f"  agreement with torch: worst relative error {worst[1]:.1e} ({worst[0]}), "
                      f"tolerance {RTOL:.0e}: {'ok' if ok else 'MISMATCH'}")
                if not ok:
                    for what, err in rows:
                        print(f"    {what:24} {err:.2e}")
            frameworks = ["layerforge"] + (["torch"] if torch is not None else [])
            runs = {f: [] for f in frameworks}
            for _ in range(args.rounds):
                for framework in frameworks:
                    runs[framework].append(run_child(name, batch, framework, args.iterations, args.warmup))
            medians = {}
            for framework, results in runs.items():
                times = [r["ms"] for r in results]
                medians[framework] = statistics.median(times)
                print(f"  {framework:10} {medians[framework]:9.2f} ms  "
                      f"{statistics.median(r['images_per_s'] for r in results):9.1f} images/s  "
                      f"(rounds: {', '.join(f'{t:.2f}' for t in times)}; peak RSS "
                      f"{max(r['rss_mb'] for r in results):.0f} MB)")
            if "torch" in medians:
                print(f"  ratio layerforge / torch: {medians['layerforge'] / medians['torch']:.3f}", flush=True)
            if args.layers and kind == "infer":
                layer_runs = {f: [] for f in frameworks}
                for _ in range(args.rounds):
                    for framework in frameworks:
                        layer_runs[framework].append(run_child(name, batch, framework, args.iterations,
                                                               args.warmup, "layers"))
                print("  per layer (each timed alone, median ms):")
                print_layers(layer_runs)
    if args.cold_start:
        print("\nCold start (LeNet; a fresh process: import, solver + first iteration, kernels compiled):")
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for label in ("first run, empty Numba cache", "second run, warm cache"):
                cold = run_child("cold", env=env)
                print(f"  {label:30} import {cold['import_s']:.2f} s, solver + first iteration "
                      f"{cold['first_iteration_s']:.2f} s, kernels compiled: {cold['compiled']}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
