"""Parameter: a learnable blob as a top (Caffe's ParameterLayer)."""
from layerforge.blob import Blob
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Parameter")
class ParameterLayer(Layer):
    """Outputs its own learnable blob (parameter_param.shape, zeros until trained or loaded) as the top."""
    exact_num_bottom = 0
    exact_num_top = 1

    def setup(self, bottom, top):
        if not self.param.parameter_param.HasField("shape"):
            raise self.error("parameter_param.shape must be set")
        self.blobs = [Blob(self.param.parameter_param.shape.dim, top[0].dtype)]

    def reshape(self, bottom, top):
        top[0].reshape_like(self.blobs[0])

    def forward(self, bottom, top):
        top[0].data[...] = self.blobs[0].data

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff += top[0].diff
