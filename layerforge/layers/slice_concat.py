"""Slice and Concat: cut a blob into pieces along one axis, and join pieces along one axis."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


def _resolve_axis(layer, blob, param, old_name):
    """`axis`, or the deprecated `slice_dim`/`concat_dim` when axis is not set (MyCaffe sets both)."""
    def canonical(field):
        value = getattr(param, field)
        if not -blob.num_axes <= value < blob.num_axes:
            raise layer.error(f"{field} {value} is out of range for bottom shape {blob.shape}")
        return value % blob.num_axes

    if param.HasField(old_name) and not param.HasField("axis"):
        return canonical(old_name)
    axis = canonical("axis")
    if param.HasField(old_name) and canonical(old_name) != axis:
        raise layer.error(f"axis {param.axis} and the deprecated {old_name} {getattr(param, old_name)} "
                          f"disagree; set only axis")
    return axis


def _index(axis, start, stop):
    return (slice(None),) * axis + (slice(start, stop),)


@register_layer("Slice")
class SliceLayer(Layer):
    """Split bottom along `axis` at `slice_point`s, or into len(top) equal pieces."""

    exact_num_bottom = 1
    min_top = 1

    def reshape(self, bottom, top):
        param = self.param.slice_param
        self.axis = _resolve_axis(self, bottom[0], param, "slice_dim")
        size = bottom[0].shape[self.axis]
        points = list(param.slice_point)
        if points:
            if len(points) != len(top) - 1:
                raise self.error(f"slice_point has {len(points)} values for {len(top)} tops; "
                                 f"give exactly len(top) - 1 = {len(top) - 1}")
            if any(b <= a for a, b in zip([0] + points, points + [size])):
                raise self.error(f"slice_point {points} must be strictly increasing and inside "
                                 f"(0, {size}) for axis {self.axis} of bottom shape {bottom[0].shape}")
        else:
            if size % len(top):
                raise self.error(f"axis {self.axis} of bottom shape {bottom[0].shape} has size {size}, "
                                 f"which does not divide into {len(top)} equal tops; give slice_point")
            points = [size // len(top) * i for i in range(1, len(top))]
        self.bounds = list(zip([0] + points, points + [size]))
        for blob, (start, stop) in zip(top, self.bounds):
            shape = list(bottom[0].shape)
            shape[self.axis] = stop - start
            blob.reshape(shape)

    def forward(self, bottom, top):
        for blob, (start, stop) in zip(top, self.bounds):
            blob.data[...] = bottom[0].data[_index(self.axis, start, stop)]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            for blob, (start, stop) in zip(top, self.bounds):
                bottom[0].diff[_index(self.axis, start, stop)] = blob.diff


@register_layer("Concat")
class ConcatLayer(Layer):
    """Join the bottoms along `axis`; all other dimensions must agree."""

    min_bottom = 1
    exact_num_top = 1

    def reshape(self, bottom, top):
        self.axis = _resolve_axis(self, bottom[0], self.param.concat_param, "concat_dim")
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
            top[0].data[_index(self.axis, start, stop)] = blob.data

    def backward(self, top, propagate_down, bottom):
        for down, blob, (start, stop) in zip(propagate_down, bottom, self.bounds):
            if down:
                blob.diff[...] = top[0].diff[_index(self.axis, start, stop)]
