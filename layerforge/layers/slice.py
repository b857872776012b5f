"""Slice: cut a blob into pieces along one axis; `resolve_axis` and `axis_index` serve Concat too."""

from layerforge.layer import Layer
from layerforge.registry import register_layer


def resolve_axis(layer, blob, param, old_name):
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


def axis_index(axis, start, stop):
    return (slice(None),) * axis + (slice(start, stop),)


@register_layer("Slice")
class SliceLayer(Layer):
    """Split bottom along `axis` at `slice_point`s, or into len(top) equal pieces."""

    exact_num_bottom = 1
    min_top = 1

    def reshape(self, bottom, top):
        param = self.param.slice_param
        self.axis = resolve_axis(self, bottom[0], param, "slice_dim")
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
            blob.data[...] = bottom[0].data[axis_index(self.axis, start, stop)]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            for blob, (start, stop) in zip(top, self.bounds):
                bottom[0].diff[axis_index(self.axis, start, stop)] = blob.diff
