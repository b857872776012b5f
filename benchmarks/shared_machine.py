"""The Siamese training step when the cores are shared: alone, two trainings at once, and beside
a busy loop — layerforge and PyTorch measured side by side in one run.

Usage: python benchmarks/shared_machine.py [--iterations N] [--no-torch] [--env NAME=VALUE ...]

Each situation starts fresh child processes of benchmarks/siamese_step.py (the same step, data
and models) at the same moment and reports each one's ms per iteration; "slowdown" is the time
beside the neighbour over the time alone. `--env` runs the layerforge children with extra
environment settings (e.g. OMP_WAIT_POLICY=PASSIVE or GOMP_SPINCOUNT=10000) to compare thread
policies in one run; `--env default` is the unchanged environment.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import siamese_step  # noqa: E402  (same folder: the step, its data and the child processes)

BUSY_LOOP = "while True: pass"


def child_command(kind, lmdb, iterations, warmup):
    return [sys.executable, siamese_step.__file__, "--child", kind, "--lmdb", str(lmdb),
            "--iterations", str(iterations), "--warmup", str(warmup)]


def run_together(commands, envs, busy=False):
    """Start every command at once (plus a busy loop when asked); their ms per iteration."""
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if busy else None
    try:
        children = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True, env=e, cwd=siamese_step.ROOT)
                    for c, e in zip(commands, envs)]
        outputs = [child.communicate()[0] for child in children]
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    if any(child.returncode for child in children):
        raise RuntimeError("a benchmark child failed")
    return [json.loads(out.strip().splitlines()[-1])["ms"] for out in outputs]


def environment(setting):
    env = dict(os.environ)
    if setting != "default":
        name, _, value = setting.partition("=")
        env[name] = value
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--env", nargs="*", default=["default"],
                        help="layerforge thread settings to compare, NAME=VALUE or 'default'")
    args = parser.parse_args()
    kinds = [("layerforge " + s, "layerforge", environment(s)) for s in args.env]
    if not args.no_torch:
        kinds.append(("torch", "torch", dict(os.environ)))
    with tempfile.TemporaryDirectory() as scratch:
        lmdb, data = siamese_step.make_lmdb(scratch)
        print(f"Siamese MNIST step ({siamese_step.PAIRS} pairs, {data} data), {os.cpu_count()} CPUs, "
              f"{args.iterations} iterations after {args.warmup} of warm-up; ms per iteration "
              f"(x: the time over the time alone; two at once: the slower of the two)")
        print(f"{'':40} {'alone':>8} {'two at once':>18} {'beside a busy loop':>20}")
        results = {}
        for label, kind, env in kinds:
            command = child_command(kind, lmdb, args.iterations, args.warmup)
            alone = run_together([command], [env])[0]
            pair = max(run_together([command, command], [env, env]))
            busy = run_together([command], [env], busy=True)[0]
            results[label] = (alone, pair, busy)
            print(f"{label:40} {alone:8.2f} {pair:10.2f} ({pair / alone:4.1f}x) "
                  f"{busy:12.2f} ({busy / alone:4.1f}x)", flush=True)
        if "torch" in results:
            print("\nratio layerforge / torch in each situation:")
            for label, times in results.items():
                if label != "torch":
                    ratios = "  ".join(f"{t / r:5.2f}" for t, r in zip(times, results["torch"]))
                    print(f"{label:40} {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
