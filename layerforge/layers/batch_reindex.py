"""BatchReindex: select or permute the items of a batch by an index bottom (Caffe's BatchReindexLayer)."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("BatchReindex")
class BatchReindexLayer(Layer):
    """top[i] = bottom[0][index[i]] for a 1-D index bottom of integers in [0, N). Items may repeat
    or be left out; backward sums the gradients of the copies of each item (zero for items not
    taken). The index bottom gets no gradient."""

    exact_num_bottom = 2
    exact_num_top = 1

    def reshape(self, bottom, top):
        if bottom[1].num_axes != 1:
            raise self.error(f"the index bottom must be 1-D, got shape {bottom[1].shape}")
        top[0].reshape(bottom[1].shape[:1] + bottom[0].shape[1:])

    def forward(self, bottom, top):
        values = bottom[1].data
        self.indices = values.astype(np.int64)
        bad = (self.indices < 0) | (self.indices >= bottom[0].shape[0])
        if bad.any():
            raise self.error(f"index {values[bad][0]:g} is outside the batch [0, {bottom[0].shape[0]})")
        np.take(bottom[0].data, self.indices, axis=0, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = 0
            np.add.at(bottom[0].diff, self.indices, top[0].diff)
        if propagate_down[1]:
            bottom[1].diff[...] = 0
