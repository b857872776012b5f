"""pycaffe on layerforge: `import layerforge.pycaffe as caffe` runs pycaffe scripts unchanged.

The package mirrors pycaffe's module tree (caffe, caffe.io, caffe.draw, caffe.net_spec,
caffe.coord_map, caffe.proto.caffe_pb2) as thin adapters over layerforge's Net, solvers, io
and NetSpec. Code that says `import caffe` itself (a Python layer's module, `from caffe.proto
import caffe_pb2`) works after `layerforge.pycaffe.alias_as_caffe()`.
"""
import sys

from layerforge.layer import Layer
from layerforge.pycaffe import coord_map, draw, io, net_spec, proto  # noqa: F401
from layerforge.pycaffe.classifier import Classifier
from layerforge.pycaffe.detector import Detector
from layerforge.pycaffe.net_spec import NetSpec, layers, params, to_proto
from layerforge.pycaffe.proto import caffe_pb2  # noqa: F401
from layerforge.pycaffe.pycaffe import (TEST, TRAIN, AdaDeltaSolver, AdaGradSolver, AdamSolver,
                                        NesterovSolver, Net, RMSPropSolver, SGDSolver, Timer,
                                        get_solver, layer_type_list, set_device, set_mode_cpu,
                                        set_mode_gpu, set_random_seed)

__version__ = "1.0.0"  # the pycaffe API version this package follows (Caffe 1.0)
_SUBMODULES = ("io", "draw", "net_spec", "coord_map", "classifier", "detector", "pycaffe", "proto",
               "proto.caffe_pb2")


def alias_as_caffe():
    """Register this package as the `caffe` module (and caffe.io, caffe.proto.caffe_pb2, ...), so
    `import caffe` anywhere in the process gets layerforge's pycaffe. Refuses to shadow a real
    caffe that is already imported."""
    existing = sys.modules.get("caffe")
    if existing is not None and existing is not sys.modules[__name__]:
        raise RuntimeError(f"a module 'caffe' is already imported ({getattr(existing, '__file__', '?')}); "
                           "call alias_as_caffe() before anything imports caffe")
    sys.modules["caffe"] = sys.modules[__name__]
    for name in _SUBMODULES:
        sys.modules[f"caffe.{name}"] = sys.modules[f"{__name__}.{name}"]


__all__ = ["Net", "TRAIN", "TEST", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
           "AdaDeltaSolver", "AdamSolver", "get_solver", "layer_type_list", "Layer", "NetSpec",
           "layers", "params", "to_proto", "set_mode_cpu", "set_mode_gpu", "set_device",
           "set_random_seed", "Classifier", "Detector", "Timer", "io", "draw", "net_spec",
           "coord_map", "proto", "caffe_pb2", "alias_as_caffe", "__version__"]
