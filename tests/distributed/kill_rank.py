"""Rank 1 kills itself (SIGKILL) after a few iterations; rank 0 must not wait for it forever."""
import os
import signal
import sys

from layerforge.solvers import get_solver

solver = get_solver(sys.argv[1])
solver.step(3)
if solver.world.rank == 1:
    os.kill(os.getpid(), signal.SIGKILL)
solver.step(1000)
