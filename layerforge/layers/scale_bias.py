"""Scale and Bias: multiply or add a blob broadcast over axes [axis, axis + num_axes) of the bottom.

The operand is a learnable parameter, or the second bottom when there are two (then its shape
fixes num_axes, and a scalar second bottom applies to everything). The bottom is viewed as
(outer, dim, inner) with dim the operand's element count, as in Caffe.
"""
import numpy as np

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.layer import Layer
from layerforge.registry import register_layer


class _Broadcast(Layer):
    """Shared shape logic of Scale and Bias."""
    min_bottom = 1
    max_bottom = 2
    exact_num_top = 1
    allow_in_place = True
    field = "?"  # the layer's parameter message, for error messages

    def _param_blob(self, bottom, num_axes, filler, default_value):
        """A parameter shaped like bottom[0].shape[axis:axis + num_axes] (num_axes -1: to the end)."""
        axis = self._axis(bottom[0])
        if num_axes < -1:
            raise self.error(f"{self.field}.num_axes must be -1 or more, got {num_axes}")
        end = bottom[0].num_axes if num_axes == -1 else axis + num_axes
        if end > bottom[0].num_axes:
            raise self.error(f"{self.field}.axis {axis} + num_axes {num_axes} exceeds the "
                             f"{bottom[0].num_axes} axes of bottom shape {bottom[0].shape}")
        blob = Blob(bottom[0].shape[axis:end], bottom[0].dtype)
        if filler is not None:
            fill(blob, filler, self.rng)
        else:
            blob.data[...] = default_value
        return blob

    def _axis(self, bottom0):
        try:
            return bottom0.canonical_axis(getattr(self.param, self.field).axis)
        except ValueError as err:
            raise self.error(f"{self.field}.axis: {err}") from None

    def _operand(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        operand = self._operand(bottom)
        axis = 0 if operand.num_axes == 0 else self._axis(bottom[0])
        end = axis + operand.num_axes
        if bottom[0].shape[axis:end] != operand.shape:
            what = "bottom[1]" if len(bottom) > 1 else "the parameter"
            raise self.error(f"{what} has shape {operand.shape}, which does not match axes "
                             f"[{axis}, {end}) of bottom[0] shape {bottom[0].shape}")
        self._dims = (bottom[0].count_range(0, axis), operand.count, bottom[0].count_range(end))
        top[0].reshape_like(bottom[0])

    def _view(self, array):
        return array.reshape(self._dims)

    def _broadcast(self, array):
        return array.reshape(1, -1, 1)


@register_layer("Scale")
class ScaleLayer(_Broadcast):
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


@register_layer("Bias")
class BiasLayer(_Broadcast):
    """top = bottom[0] + bias."""
    field = "bias_param"

    def setup(self, bottom, top):
        param = self.param.bias_param
        if len(bottom) == 1:
            self.blobs = [self._param_blob(bottom, param.num_axes, param.filler, 0.0)]

    def forward(self, bottom, top):
        np.add(self._view(bottom[0].data), self._broadcast(self._operand(bottom).data),
               out=self._view(top[0].data))

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        bias_grad = self._view(dy).sum(axis=(0, 2))
        if len(bottom) == 1:
            self.blobs[0].diff += bias_grad.reshape(self.blobs[0].shape)
        elif propagate_down[1]:
            bottom[1].diff[...] = bias_grad.reshape(bottom[1].shape)
        if propagate_down[0] and bottom[0].diff is not dy:
            bottom[0].diff[...] = dy
