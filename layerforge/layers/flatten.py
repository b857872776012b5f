"""Flatten: merge a range of axes into one."""
from layerforge.layers.reshape import ReshapingLayer
from layerforge.registry import register_layer


@register_layer("Flatten")
class FlattenLayer(ReshapingLayer):
    """Merge axes `axis` .. `end_axis` (inclusive) into one: N×C×H×W -> N×(C·H·W) by default."""

    batch_independent = True

    def batch_independent_for(self, bottom):
        return self.param.flatten_param.axis % bottom[0].num_axes > 0   # axis 0 folds the items

    def top_shape(self, blob):
        param = self.param.flatten_param
        axes = []
        for field in ("axis", "end_axis"):
            value = getattr(param, field)
            if not -blob.num_axes <= value < blob.num_axes:
                raise self.error(f"{field} {value} is out of range for bottom shape {blob.shape}")
            axes.append(value % blob.num_axes)
        start, end = axes
        if end < start:
            raise self.error(f"end_axis {param.end_axis} comes before axis {param.axis} "
                             f"for bottom shape {blob.shape}")
        return blob.shape[:start] + (blob.count_range(start, end + 1),) + blob.shape[end + 1:]
