"""Scale: multiply by a learned or second-bottom operand broadcast over some axes (see bias.py)."""
import numpy as np

from layerforge.layers.bias import Broadcast
from layerforge.registry import register_layer


@register_layer("Scale")
class ScaleLayer(Broadcast):
    """top = bottom[0] * scale (+ bias with scale_param.bias_term)."""
    field = "scale_param"

    def setup(self, bottom, top):
        param = self.param.scale_param
        if len(bottom) == 1:
            self.blobs = [self._param_blob(bottom, param.num_axes,
                                           param.filler if param.HasField("filler") else None, 1.0)]
        self.bias_term = param.bias_term
        if self.bias_term:
            num_axes = bottom[1].num_axes if len(bottom) > 1 else param.num_axes
            self.blobs.append(self._param_blob(
                bottom, num_axes, param.bias_filler if param.HasField("bias_filler") else None, 0.0))

    def forward(self, bottom, top):
        self._input = bottom[0].data.copy() if top[0] is bottom[0] else bottom[0].data
        y = self._view(top[0].data)
        np.multiply(self._view(bottom[0].data), self._broadcast(self._operand(bottom).data), out=y)
        if self.bias_term:
            y += self._broadcast(self.blobs[-1].data)

    def backward(self, top, propagate_down, bottom):
        dy = self._view(top[0].diff)
        if self.bias_term:
            self.blobs[-1].diff += dy.sum(axis=(0, 2)).reshape(self.blobs[-1].shape)
        # Parameter gradients first: in place, the bottom diff below overwrites dy.
        scale_grad = np.einsum("odi,odi->d", dy, self._view(self._input))
        if len(bottom) == 1:
            self.blobs[0].diff += scale_grad.reshape(self.blobs[0].shape)
        elif propagate_down[1]:
            bottom[1].diff[...] = scale_grad.reshape(bottom[1].shape)
        if propagate_down[0]:
            np.multiply(dy, self._broadcast(self._operand(bottom).data), out=self._view(bottom[0].diff))
