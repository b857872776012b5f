"""Solvers: the training loop (base.py) and the update rules registered by type (rules.py).

`get_solver(path_or_SolverParameter, weights=None)` builds the solver the file's `type`
names (case-insensitive; the deprecated `solver_type` enum too). A solver from outside the
package registers itself with `@register_solver("Name")` or through the
`layerforge.solvers` entry-point group.
"""
from layerforge.solvers.base import Solver, TrainingDiverged
from layerforge.solvers.registry import get_solver, register_solver, solver_type
from layerforge.solvers.rules import (AdaDeltaSolver, AdaGradSolver, AdamSolver, NesterovSolver,
                                      RMSPropSolver, SGDSolver)

__all__ = ["Solver", "TrainingDiverged", "get_solver", "register_solver", "solver_type", "SGDSolver",
           "NesterovSolver", "AdaGradSolver", "RMSPropSolver", "AdaDeltaSolver", "AdamSolver"]
