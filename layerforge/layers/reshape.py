"""Reshape: the same values under a new shape; `ReshapingLayer` is the base Flatten shares."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


class ReshapingLayer(Layer):
    """Base of Flatten and Reshape: the top holds the bottom's values in `self.top_shape`."""

    exact_num_bottom = 1
    exact_num_top = 1

    def reshape(self, bottom, top):
        top[0].reshape(self.top_shape(bottom[0]))

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff.reshape(bottom[0].shape)


@register_layer("Reshape")
class ReshapeLayer(ReshapingLayer):
    """Caffe's Reshape: `shape` replaces axes [axis, axis + num_axes); 0 copies a dim, -1 infers one."""

    def setup(self, bottom, top):
        dims = list(self.param.reshape_param.shape.dim)
        if dims.count(-1) > 1:
            raise self.error(f"reshape_param.shape {dims} has more than one -1; at most one dim is inferred")
        if any(d < -1 for d in dims):
            raise self.error(f"reshape_param.shape {dims} has a dim below -1")
        if self.param.reshape_param.num_axes < -1:
            raise self.error(f"num_axes {self.param.reshape_param.num_axes} must be >= 0, or -1 for all")

    def top_shape(self, blob):
        param = self.param.reshape_param
        dims = list(param.shape.dim)
        start = param.axis if param.axis >= 0 else blob.num_axes + param.axis + 1
        end = blob.num_axes if param.num_axes == -1 else start + param.num_axes
        if not 0 <= start <= end <= blob.num_axes:
            raise self.error(f"axis {param.axis} with num_axes {param.num_axes} is out of range "
                             f"for bottom shape {blob.shape}")
        for i, d in enumerate(dims):
            if d == 0:
                if start + i >= blob.num_axes:
                    raise self.error(f"reshape_param.shape {dims} has a 0 at position {i}, but bottom "
                                     f"shape {blob.shape} has no axis {start + i} to copy")
                dims[i] = blob.shape[start + i]
        shape = list(blob.shape[:start]) + dims + list(blob.shape[end:])
        if -1 in dims:
            known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
            if known == 0 or blob.count % known:
                raise self.error(f"cannot infer the -1 in reshape_param.shape {list(param.shape.dim)}: "
                                 f"bottom shape {blob.shape} has {blob.count} values, not a multiple of {known}")
            shape[shape.index(-1)] = blob.count // known
        if int(np.prod(shape, dtype=np.int64)) != blob.count:
            raise self.error(f"top shape {tuple(shape)} ({int(np.prod(shape, dtype=np.int64))} values) does "
                             f"not match bottom shape {blob.shape} ({blob.count} values)")
        return tuple(shape)
