"""Solver type registry: `type: "Adam"` -> the Solver subclass, built-in or from a plug-in."""
import importlib
from importlib import metadata

from layerforge.io import ConfigError
from layerforge.proto import layerforge_pb2 as pb
from layerforge.solvers.validation import read_solver

SOLVERS = {}                # type name -> Solver subclass
ENTRY_POINT_GROUP = "layerforge.solvers"
_LEGACY_TYPES = {pb.SolverParameter.SGD: "SGD", pb.SolverParameter.NESTEROV: "Nesterov",
                 pb.SolverParameter.ADAGRAD: "AdaGrad", pb.SolverParameter.RMSPROP: "RMSProp",
                 pb.SolverParameter.ADADELTA: "AdaDelta", pb.SolverParameter.ADAM: "Adam"}
_loaded = False


def register_solver(type_name):
    """Class decorator: make a Solver subclass reachable as `type: "<type_name>"`."""

    def decorate(cls):
        SOLVERS[type_name] = cls
        cls.type_name = type_name
        return cls

    return decorate


def _load_builtin_and_plugins():
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("layerforge.solvers.rules")
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        SOLVERS.setdefault(entry.name, entry.load())


def solver_type(param, source="<SolverParameter>"):
    """The canonical type name of a SolverParameter (`type`, else the legacy enum)."""
    _load_builtin_and_plugins()
    name = param.type
    if param.HasField("solver_type"):
        legacy = _LEGACY_TYPES[param.solver_type]
        if param.HasField("type") and name.lower() != legacy.lower():
            raise ConfigError(f"{source}: solver_type {pb.SolverParameter.SolverType.Name(param.solver_type)} "
                              f"and type \"{name}\" disagree; remove the deprecated solver_type")
        name = param.type if param.HasField("type") else legacy
    for known in SOLVERS:
        if known.lower() == name.lower():
            return known
    raise ConfigError(f"{source}: unknown solver type \"{name}\"; valid types: {', '.join(SOLVERS)}")


def get_solver(solver, weights=None):
    """The Solver subclass `solver` (a solver prototxt path or SolverParameter) asks for."""
    param, source, _ = read_solver(solver)
    return SOLVERS[solver_type(param, source)](solver, weights)
