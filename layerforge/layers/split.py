"""Split: copy one bottom to several tops; the net inserts it where one top feeds several layers."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Split")
class SplitLayer(Layer):
    """Copy one bottom to every top; the bottom's gradient is the sum of the tops' gradients.

    The net inserts this layer where one top feeds several layers.
    """

    exact_num_bottom = 1
    min_top = 1

    def reshape(self, bottom, top):
        for blob in top:
            blob.reshape_like(bottom[0])

    def forward(self, bottom, top):
        for blob in top:
            blob.data[...] = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            np.copyto(bottom[0].diff, top[0].diff)
            for blob in top[1:]:
                bottom[0].diff += blob.diff
