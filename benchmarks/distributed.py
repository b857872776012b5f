"""Data-parallel training on MPI: measured on this machine, modelled for clusters.

Usage: python benchmarks/distributed.py [--iterations N]

1. Throughput of the MNIST Siamese solver (synthetic digits, 64 pairs per iteration in all):
   one process with two Numba threads, against `mpiexec -n 2` with one thread per rank and
   32 pairs per rank.
2. One gradient Allreduce (World.average_gradients, 2 ranks on this machine) against the
   parameter count: bytes sent per rank and time.
3. A model for clusters: the ring Allreduce cost (distributed.ring_allreduce_seconds: 2(n-1)
   steps, each moving 1/n of the gradients plus a 5 us latency) added to the measured step time,
   for 8 and 64 nodes on 10 and 100 Gb/s, for the MNIST Siamese net. Weak scaling (batch per
   rank fixed), no overlap of communication with backward: a lower bound.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
SIZES = (10_000, 100_000, 1_000_000, 10_000_000)


def child_train(folder, pairs, iterations):
    from layerforge import distributed
    from layerforge.solvers import get_solver
    from tests.synthetic import siamese_lmdbs, siamese_solver

    lmdbs = {"train": Path(folder) / "train_lmdb", "test": Path(folder) / "test_lmdb"}
    solver = get_solver(siamese_solver(Path(folder) / f"r{distributed.launched_size()}", lmdbs, pairs,
                                       "bench", max_iter=10 ** 6))
    solver.param.test_interval = solver.param.display = 0
    solver.step(5)
    start = time.perf_counter()
    solver.step(iterations)
    seconds = time.perf_counter() - start
    if distributed.shard()[0] == 0:
        print(json.dumps({"ms": 1000 * seconds / iterations,
                          "params": sum(b.count for b in solver.net.learnable_params)}))


def child_allreduce():
    from layerforge import distributed

    world = distributed.start()
    results = []
    for size in SIZES:
        diffs = [np.ones(size, np.float32)]
        world.average_gradients(diffs)
        repeats = max(3, int(2e7 // size))
        start = time.perf_counter()
        for _ in range(repeats):
            world.average_gradients(diffs)
        results.append({"values": size, "bytes": 4 * size, "ms": 1000 * (time.perf_counter() - start) / repeats})
    if world.rank == 0:
        print(json.dumps(results))


def run(command, env=None):
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **(env or {})}).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--child", choices=["train", "allreduce"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--pairs", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "train":
        return child_train(args.folder, args.pairs, args.iterations)
    if args.child == "allreduce":
        return child_allreduce()
    if MPIEXEC is None:
        print("needs an MPI launcher: pip install 'layerforge[mpi]'")
        return 1
    from layerforge import distributed
    from tests.synthetic import siamese_lmdbs

    me = [sys.executable, __file__]
    with tempfile.TemporaryDirectory() as folder:
        siamese_lmdbs(Path(folder))
        train = me + ["--child", "train", "--folder", folder, "--iterations", str(args.iterations)]
        one = run(train + ["--pairs", "64"], {"NUMBA_NUM_THREADS": "2"})
        two = run([MPIEXEC, "-n", "2"] + train + ["--pairs", "32"])
    images = 2 * 64
    print(f"MNIST Siamese solver, 64 pairs per iteration in all, {os.cpu_count()} CPUs, {args.iterations} iterations")
    print(f"  1 process x 2 threads:         {one['ms']:7.2f} ms/iteration  {1000 * images / one['ms']:7.0f} images/s")
    print(f"  2 ranks x 1 thread (mpiexec):  {two['ms']:7.2f} ms/iteration  {1000 * images / two['ms']:7.0f} images/s")

    reduce = run([MPIEXEC, "-n", "2"] + me + ["--child", "allreduce"])
    print("\nOne gradient Allreduce, 2 ranks on this machine (float32):")
    for r in reduce:
        print(f"  {r['values']:>10,} values  {r['bytes'] / 1e6:8.2f} MB per rank  {r['ms']:8.3f} ms")

    nets = {"MNIST Siamese": (one["params"], one["ms"] / 1000)}
    print("\nModelled weak-scaling efficiency (ring Allreduce, no overlap), per-rank step as measured alone:")
    for name, (params, step) in nets.items():
        print(f"  {name}: {params:,} parameters, {1000 * step:.2f} ms per step")
        for nodes in (8, 64):
            cells = [f"{bandwidth:>3} Gb/s: {100 * distributed.scaling_efficiency(step, params, nodes, bandwidth):5.1f} %"
                     for bandwidth in (10, 100)]
            print(f"    {nodes:>2} nodes  " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
