"""ArgMax: the indices (and optionally values) of the top_k largest entries, as Caffe's ArgMaxLayer."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("ArgMax")
class ArgMaxLayer(Layer):
    """Without `axis`: per item, over all its values flattened; the top is N×1×top_k (N×2×top_k with
    out_max_val: indices, then values), padded with 1s to the bottom's rank. With `axis`: along that
    axis, whose length becomes top_k, holding the values with out_max_val, else the indices. Ties go
    to the larger index, as Caffe's descending sort of (value, index) pairs. No backward.
    """

    exact_num_bottom = 1
    exact_num_top = 1
    has_backward = False
    batch_independent = True

    def batch_independent_for(self, bottom):
        return self.axis != 0       # along axis 0 the items compete

    def setup(self, bottom, top):
        param = self.param.argmax_param
        self.out_max_val, self.top_k = param.out_max_val, param.top_k
        if self.top_k < 1:
            raise self.error(f"argmax_param.top_k must be at least 1, got {self.top_k}")
        self.axis = None
        if param.HasField("axis"):
            try:
                self.axis = bottom[0].canonical_axis(param.axis)
            except ValueError as e:
                raise self.error(f"argmax_param.axis: {e}") from None

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if self.axis is None:
            length = bottom[0].count_range(1)
            out = [1] * max(len(shape), 3)
            out[0], out[1], out[2] = shape[0], 2 if self.out_max_val else 1, self.top_k
        else:
            length = shape[self.axis]
            out = list(shape)
            out[self.axis] = self.top_k
        if self.top_k > length:
            raise self.error(f"argmax_param.top_k {self.top_k} is larger than the {length} values it "
                             f"chooses from (bottom shape {shape})")
        top[0].reshape(out)

    def forward(self, bottom, top):
        x = bottom[0].data
        if self.axis is None:
            rows = x.reshape(x.shape[0], -1)
        else:
            rows = np.moveaxis(x, self.axis, -1).reshape(-1, x.shape[self.axis])
        length = rows.shape[1]
        # Stable descending sort of the reversed rows: among equal values the larger index comes first.
        order = np.argsort(-rows[:, ::-1], axis=1, kind="stable")[:, :self.top_k]
        indices = length - 1 - order
        values = np.take_along_axis(rows, indices, axis=1)
        if self.axis is None:
            parts = (indices, values) if self.out_max_val else (indices,)
            top[0].data.reshape(x.shape[0], len(parts), self.top_k)[...] = np.stack(parts, axis=1)
        else:
            result = values if self.out_max_val else indices
            moved = list(x.shape)
            del moved[self.axis]
            top[0].data[...] = np.moveaxis(result.reshape(moved + [self.top_k]), -1, self.axis)
