"""pycaffe's caffe.net_spec: layerforge's NetSpec (layerforge/netspec.py) under Caffe's names."""
from layerforge.netspec import (Function, Layers, NetSpec, Parameters, Top, layers, params,  # noqa: F401
                                to_proto)
