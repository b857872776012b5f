"""layerforge: a Caffe-style deep-learning framework with Numba kernels."""
__version__ = "0.1.0"

from layerforge.blob import Blob
from layerforge.layer import Layer, LayerError
from layerforge.net import Net
from layerforge.netspec import L, NetSpec, P, to_proto
from layerforge.proto.layerforge_pb2 import RUN, TEST, TRAIN
from layerforge.registry import register_layer
from layerforge.solvers import (AdaDeltaSolver, AdaGradSolver, AdamSolver, NesterovSolver, RMSPropSolver,
                                SGDSolver, Solver, TrainingDiverged, get_solver)

__all__ = ["Blob", "Layer", "LayerError", "Net", "NetSpec", "L", "P", "to_proto", "TRAIN", "TEST",
           "RUN", "register_layer", "Solver", "get_solver", "TrainingDiverged", "SGDSolver", "NesterovSolver", "AdaGradSolver",
           "RMSPropSolver", "AdaDeltaSolver", "AdamSolver"]
