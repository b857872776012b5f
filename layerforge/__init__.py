"""layerforge: a Caffe-style deep-learning framework with Numba kernels."""
from layerforge.blob import Blob
from layerforge.layer import Layer, LayerError
from layerforge.registry import register_layer

__all__ = ["Blob", "Layer", "LayerError", "register_layer"]
