"""Bias (and the `Broadcast` base Scale shares): add a blob broadcast over axes [axis, axis + num_axes).

The operand is a learnable parameter, or the second bottom when there are two (then its shape
fixes num_axes, and a scalar second bottom applies to everything). The bottom is viewed as
(outer, dim, inner) with dim the operand's element count, as in Caffe.
"""
import numpy as np

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.layer import Layer
from layerforge.registry import register_layer


class Broadcast(Layer):
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


@register_layer("Bias")
class BiasLayer(Broadcast):
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
