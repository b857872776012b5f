"""Scale: multiply by a learned or second-bottom operand broadcast over some axes (see bias.py)."""
import numpy as np

from layerforge.kernels.channels import channel_affine, channel_affine_backward, channel_affine_keeping_input
from layerforge.layers.bias import Broadcast
from layerforge.registry import register_layer


@register_layer("Scale")
class ScaleLayer(Broadcast):
    """top = bottom[0] * scale (+ bias with scale_param.bias_term).

    In place (top is bottom[0]) the forward keeps a copy of its input for the scale gradient,
    written in the same pass as the top into a buffer reused from one iteration to the next.
    """
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
        x = self._view(bottom[0].data)
        y = self._view(top[0].data)
        scale = self._operand(bottom).data.reshape(-1)
        shift = self.blobs[-1].data.reshape(-1) if self.bias_term else np.zeros_like(scale)
        if top[0] is not bottom[0]:
            self._input = x
            channel_affine(x, scale, shift, y)
            return
        self._input = self.buffer("_kept", x.shape, x.dtype)
        channel_affine_keeping_input(x, scale, shift, y, self._input)

    def backward(self, top, propagate_down, bottom):
        dy = self._view(top[0].diff)
        outer, dim, _ = self._dims
        scale_sums, shift_sums = np.empty((outer, dim)), np.empty((outer, dim))
        # In place, dx is dy: each element's parameter-gradient terms are read before dx overwrites it.
        channel_affine_backward(self._input, dy, self._operand(bottom).data.reshape(-1), scale_sums, shift_sums,
                                self._view(bottom[0].diff), bool(propagate_down[0]))
        if self.bias_term:
            self.blobs[-1].diff += shift_sums.sum(axis=0).reshape(self.blobs[-1].shape)
        scale_grad = scale_sums.sum(axis=0)
        if len(bottom) == 1:
            self.blobs[0].diff += scale_grad.reshape(self.blobs[0].shape)
        elif propagate_down[1]:
            bottom[1].diff[...] = scale_grad.reshape(bottom[1].shape)
