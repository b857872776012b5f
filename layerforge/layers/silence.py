"""Silence: consume bottoms nobody else reads; no tops."""
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Silence")
class SilenceLayer(Layer):
    """Consume bottoms nobody else uses, so the net does not report them; their gradient is zero."""

    min_bottom = 1
    exact_num_top = 0

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        for down, blob in zip(propagate_down, bottom):
            if down:
                blob.diff[...] = 0
