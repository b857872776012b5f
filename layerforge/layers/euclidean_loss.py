"""EuclideanLoss: half the mean (over the batch) squared distance between two bottoms."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("EuclideanLoss")
class EuclideanLossLayer(Layer):
    """loss = 1/(2N) · sum (a - b)²; both bottoms get a gradient (a target may be learned too)."""

    exact_num_bottom = 2
    exact_num_top = 1
    is_loss = True

    def reshape(self, bottom, top):
        a, b = bottom
        if a.count != b.count or a.shape[:1] != b.shape[:1]:
            raise self.error(f"bottom[0] shape {a.shape} and bottom[1] shape {b.shape} must have the "
                             f"same first dimension and the same number of values")
        top[0].reshape(())

    def forward(self, bottom, top):
        self.difference = bottom[0].data - bottom[1].data.reshape(bottom[0].shape)
        num = bottom[0].shape[0] if bottom[0].num_axes else 1
        top[0].data[...] = np.sum(self.difference ** 2, dtype=np.float64) / (2 * num)

    def backward(self, top, propagate_down, bottom):
        num = bottom[0].shape[0] if bottom[0].num_axes else 1
        scale = top[0].diff.item() / num
        for sign, down, blob in zip((1, -1), propagate_down, bottom):
            if down:
                np.multiply(self.difference.reshape(blob.shape), sign * scale, out=blob.diff)
