"""layerforge: a Caffe-style deep-learning framework with Numba kernels."""
__version__ = "0.1.0"

from layerforge.blob import Blob
from layerforge.layer import Layer, LayerError
from layerforge.net import Net
from layerforge.proto.layerforge_pb2 import RUN, TEST, TRAIN
from layerforge.registry import register_layer
from layerforge.sgd_solvers import (AdaDeltaSolver, AdaGradSolver, AdamSolver, NesterovSolver,
                                    RMSPropSolver, SGDSolver)
from layerforge.solver import Solver, TrainingDiverged, get_solver

__all__ = ["Blob", "Layer", "LayerError", "Net", "TRAIN", "TEST", "RUN", "register_layer",
           "Solver", "get_solver", "TrainingDiverged", "SGDSolver", "NesterovSolver", "AdaGradSolver",
           "RMSPropSolver", "AdaDeltaSolver", "AdamSolver"]
