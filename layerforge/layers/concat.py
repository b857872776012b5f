"""Concat: join bottoms along one axis (Caffe's ConcatLayer)."""
import numpy as np

from layerforge.layer import Layer
from layerforge.layers.slice import axis_index, resolve_axis
from layerforge.registry import register_layer


@register_layer("Concat")
class ConcatLayer(Layer):
    """Join the bottoms along `axis`; all other dimensions must agree."""

    min_bottom = 1
    exact_num_top = 1

    def reshape(self, bottom, top):
        self.axis = resolve_axis(self, bottom[0], self.param.concat_param, "concat_dim")
        first = bottom[0].shape
        for i, blob in enumerate(bottom[1:], 1):
            if (len(blob.shape) != len(first)
                    or any(a != b for k, (a, b) in enumerate(zip(blob.shape, first)) if k != self.axis)):
                raise self.error(f"bottom[{i}] shape {blob.shape} does not match bottom[0] shape {first} "
                                 f"outside the concat axis {self.axis}")
        ends = np.cumsum([blob.shape[self.axis] for blob in bottom])
        self.bounds = list(zip([0, *ends[:-1]], ends))
        shape = list(first)
        shape[self.axis] = int(ends[-1])
        top[0].reshape(shape)

    def forward(self, bottom, top):
        for blob, (start, stop) in zip(bottom, self.bounds):
            top[0].data[axis_index(self.axis, start, stop)] = blob.data

    def backward(self, top, propagate_down, bottom):
        for down, blob, (start, stop) in zip(propagate_down, bottom, self.bounds):
            if down:
                blob.diff[...] = top[0].diff[axis_index(self.axis, start, stop)]
