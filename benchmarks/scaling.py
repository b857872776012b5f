"""How the cost grows with the work: ms per training iteration of one conv net against batch
size and image size, the Convolution algorithm each layer picks, and the peak memory of the
Siamese training step against PyTorch's.

Usage: python benchmarks/scaling.py [--batches B ...] [--sizes S ...] [--iterations N]
           [--no-torch] [--no-memory] [--quick]

1. Table: the LeNet-like net below (conv 20 5x5 -> max pool 2 -> conv 50 5x5 -> max pool 2 ->
   ip 500 -> ReLU -> ip 10 -> softmax loss; one input channel, square S x S images) trains on
   one fixed synthetic batch (Input layers, as in benchmarks/workloads.py) for N iterations
   after 2 of warm-up, in a fresh child process per (B, S) and framework; ms per iteration
   (forward + backward + SGD update) and, with torch, the ratio layerforge / PyTorch. The
   column "algorithms" lists `Convolution.algorithm` of conv1 and conv2 at that geometry
   (direct, winograd, im2row, im2col: see layerforge/layers/convolution.py). Defaults:
   B in 16 32 64 128 256 512 at S = 28, and S in 28 56 112 227 at B = 16.
2. Memory: the MNIST Siamese training step of benchmarks/siamese_step.py (64 pairs, Data layer
   from an LMDB) run for N iterations in a child per framework: peak resident memory of the
   child (VmHWM, which starts afresh at exec) and, for layerforge, the peak of Python/numpy
   allocations seen by tracemalloc (torch's own allocator is invisible to tracemalloc). The
   PyTorch child, as in siamese_step.py, also builds layerforge's solver once for the initial
   weights and the batch, so its peak includes that net.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import workloads  # noqa: E402  (same folder: Input-fed solvers, peak memory)

NET = """name: "lenet_like"
layer {{ name: "data" type: "Input" top: "data" top: "label"
        input_param {{ shape {{ dim: {b} dim: 1 dim: {s} dim: {s} }} shape {{ dim: {b} }} }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
        convolution_param {{ num_output: 20 kernel_size: 5 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
        convolution_param {{ num_output: 50 kernel_size: 5 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
        param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
        inner_product_param {{ num_output: 500 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
        inner_product_param {{ num_output: 10 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""


def learning_rate(size):
    """workloads.BASE_LR scaled by (28 / size)²: ip1's fan-in grows with the image area, and at
    the base rate large images diverge within a few iterations (which the solver's divergence
    guard stops)."""
    return workloads.BASE_LR * (28 / size) ** 2


def make_solver(batch, size):
    from google.protobuf import text_format

    from layerforge.proto import layerforge_pb2 as pb
    from layerforge.solvers import get_solver
    param = pb.SolverParameter(base_lr=learning_rate(size), momentum=workloads.MOMENTUM, lr_policy="fixed",
                               max_iter=10 ** 9, display=0, snapshot=0, snapshot_after_train=False,
                               random_seed=1)
    text_format.Parse(NET.format(b=batch, s=size), param.net_param)
    solver = get_solver(param)
    rng = np.random.default_rng(0)
    inputs = {"data": rng.random((batch, 1, size, size)), "label": rng.integers(0, 10, batch)}
    for name, value in inputs.items():
        solver.net.blobs[name].data[...] = value
    return solver, inputs


def child_step(batch, size, framework, iterations):
    solver, inputs = make_solver(batch, size)
    result = {"algorithms": [layer.algorithm for layer in solver.net.layers_of_type("Convolution")]}
    if framework == "layerforge":
        def step():
            solver.step(1)
    else:
        from torch_net import TorchNet, to_torch
        tnet = TorchNet(solver.net)
        feeds = {k: to_torch(v.astype(np.float32)) for k, v in inputs.items()}
        optimizer = tnet.optimizer(learning_rate(size), workloads.MOMENTUM)

        def step():
            optimizer.zero_grad(set_to_none=False)
            tnet.forward(feeds)[1].backward()
            optimizer.step()
    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    result["ms"] = 1000 * (time.perf_counter() - start) / iterations
    return result


def child_memory(framework, lmdb, iterations):
    import siamese_step
    if framework == "layerforge":
        tracemalloc.start()
        solver = siamese_step.make_solver(lmdb)
        solver.step(iterations)
        traced = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
        return {"peak_rss_mb": workloads.peak_rss_mb(), "tracemalloc_mb": traced}
    siamese_step.child_torch(lmdb, iterations, 1, False)
    return {"peak_rss_mb": workloads.peak_rss_mb()}


def run_child(*arguments):
    command = [sys.executable, __file__, "--child", *map(str, arguments)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=HERE.parent).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 56, 112, 227])
    parser.add_argument("--size-batch", type=int, default=16, help="batch size of the image-size rows")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="rounds per cell (the median is shown)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 iteration: checks that it runs")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "memory":
            print(json.dumps(child_memory(args.child[1], args.child[2], int(args.child[3]))))
        else:
            batch, size, framework, iterations = args.child
            print(json.dumps(child_step(int(batch), int(size), framework, int(iterations))))
        return 0
    if args.quick:
        args.batches, args.sizes, args.size_batch, args.iterations = [2, 4], [28, 36], 2, 1
    frameworks = ["layerforge"] + ([] if args.no_torch else ["torch"])
    cells = [(b, 28) for b in args.batches] + [(args.size_batch, s) for s in args.sizes if s != 28]
    print(f"LeNet-like training step, ms per iteration (median of {args.rounds} rounds of "
          f"{args.iterations} iterations)")
    print(f"{'batch':>6} {'size':>5} {'layerforge':>11} {'torch':>9} {'ratio':>6}  algorithms (conv1, conv2)")
    for batch, size in cells:
        runs = {f: [run_child(batch, size, f, args.iterations) for _ in range(args.rounds)] for f in frameworks}
        times = {f: statistics.median(r["ms"] for r in results) for f, results in runs.items()}
        algorithms = runs["layerforge"][0]["algorithms"]
        torch_ms = times.get("torch")
        print(f"{batch:6} {size:5} {times['layerforge']:11.2f} "
              f"{torch_ms if torch_ms is not None else float('nan'):9.2f} "
              f"{times['layerforge'] / torch_ms if torch_ms else float('nan'):6.3f}  {', '.join(algorithms)}",
              flush=True)
    if not args.no_memory:
        import siamese_step
        with tempfile.TemporaryDirectory() as scratch:
            lmdb, data = siamese_step.make_lmdb(scratch)
            print(f"\nPeak memory of the Siamese MNIST training step ({siamese_step.PAIRS} pairs, {data} data, "
                  f"{args.iterations} iterations), one child process each:")
            for framework in frameworks:
                result = run_child("memory", framework, lmdb, args.iterations)
                extra = f", tracemalloc peak {result['tracemalloc_mb']:.0f} MB" if "tracemalloc_mb" in result else ""
                print(f"  {framework:10} peak RSS {result['peak_rss_mb']:.0f} MB{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
