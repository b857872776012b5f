"""Rank 1's loss turns NaN at iteration 3; every rank must stop at that iteration, together."""
import sys

from layerforge.solvers import get_solver
from layerforge.solvers.base import TrainingDiverged

solver = get_solver(sys.argv[1])
solver.step(3)
if solver.world.rank == 1:
    forward_backward = solver.net.forward_backward
    solver.net.forward_backward = lambda: forward_backward() * float("nan")
try:
    solver.step(1000)
except TrainingDiverged as err:
    print(f"rank {solver.world.rank} stopped at iteration {solver.iter}: {err}", flush=True)
    sys.exit(1)
