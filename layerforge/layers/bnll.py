"""BNLL: the binomial normal log likelihood (softplus), y = log(1 + exp(x)), computed stably."""
import numpy as np

from layerforge.layers.activations import NeuronLayer
from layerforge.registry import register_layer


@register_layer("BNLL")
class BNLLLayer(NeuronLayer):
    """y = max(x, 0) + log(1 + exp(-|x|)); the gradient is dy · sigmoid(x). May run in place."""

    def forward(self, bottom, top):
        x = bottom[0].data
        self.sigmoid = 0.5 * np.tanh(0.5 * x) + 0.5  # kept for backward: in place overwrites x
        np.logaddexp(x, 0, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            np.multiply(top[0].diff, self.sigmoid, out=bottom[0].diff)
