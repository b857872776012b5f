"""Filter: keep the items whose selector value is non-zero (Caffe's FilterLayer)."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Filter")
class FilterLayer(Layer):
    """Bottoms: K blobs to filter, then the selector (N values, shape N or N×1×…); K tops.

    Top k holds the items of bottom k whose selector value is non-zero, in order, so the tops'
    first axis changes with the data. As in Caffe, the first reshape (at set-up, before any data)
    keeps all N items. Backward copies each top item's gradient to the item it came from and
    zeroes the others; the selector gets no gradient.
    """

    min_bottom = 2
    reshape_every_forward = True   # the tops' length is the selector's count of non-zeros

    def setup(self, bottom, top):
        if len(top) != len(bottom) - 1:
            raise self.error(f"takes one top per filtered bottom: {len(bottom) - 1} tops for "
                             f"{len(bottom)} bottoms (the last bottom is the selector), got {len(top)}")
        self.indices = None

    def _select(self, bottom):
        selector = bottom[-1]
        if any(d != 1 for d in selector.shape[1:]):
            raise self.error(f"selector (last bottom) shape {selector.shape}: every axis after the "
                             f"first must be 1")
        for i, blob in enumerate(bottom[:-1]):
            if blob.shape[:1] != selector.shape[:1]:
                raise self.error(f"bottom[{i}] shape {blob.shape} and the selector shape {selector.shape} "
                                 f"must have the same first dimension")
        return np.flatnonzero(selector.data.reshape(-1))

    def _shape_tops(self, bottom, top, num):
        for t, b in zip(top, bottom):
            t.reshape((num,) + b.shape[1:])

    def reshape(self, bottom, top):
        first = self.indices is None
        self.indices = self._select(bottom)
        self._shape_tops(bottom, top, bottom[0].shape[0] if first else len(self.indices))

    def forward(self, bottom, top):
        self.indices = self._select(bottom)
        self._shape_tops(bottom, top, len(self.indices))
        for t, b in zip(top, bottom):
            np.take(b.data, self.indices, axis=0, out=t.data)

    def backward(self, top, propagate_down, bottom):
        for t, b, down in zip(top, bottom, propagate_down):
            if down:
                b.diff[...] = 0
                b.diff[self.indices] = t.diff
        if propagate_down[-1]:
            bottom[-1].diff[...] = 0
