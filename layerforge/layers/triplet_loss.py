"""TripletLoss: an anchor must be closer to its positive than to its negative by a margin."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("TripletLoss")
class TripletLossLayer(Layer):
    """Loss = 1/N sum_i max(0, ||a_i - p_i||^2 - ||a_i - n_i||^2 + margin), squared distances.

    Bottoms: anchor, positive, negative, each N x D (split one stacked blob with a Slice
    layer in front). `triplet_loss_param.margin` defaults to 1.
    """

    exact_num_bottom = 3
    exact_num_top = 1
    is_loss = True

    def setup(self, bottom, top):
        self.margin = float(self.param.triplet_loss_param.margin)

    def reshape(self, bottom, top):
        if not bottom[0].shape == bottom[1].shape == bottom[2].shape:
            raise self.error("anchor, positive and negative bottoms must have one shape, got "
                             f"{bottom[0].shape}, {bottom[1].shape} and {bottom[2].shape}")
        top[0].reshape(())

    def forward(self, bottom, top):
        n = bottom[0].shape[0]
        a, p, neg = (b.data.reshape(n, -1) for b in bottom)
        hinge = np.sum((a - p) ** 2, axis=1) - np.sum((a - neg) ** 2, axis=1) + self.margin
        self.active = hinge > 0
        top[0].data[...] = np.sum(hinge[self.active]) / n

    def backward(self, top, propagate_down, bottom):
        n = bottom[0].shape[0]
        a, p, neg = (b.data.reshape(n, -1) for b in bottom)
        coef = 2.0 * float(top[0].diff.reshape(-1)[0]) / n * self.active[:, None]
        grads = (coef * (neg - p), coef * (p - a), coef * (a - neg))
        for blob, grad, down in zip(bottom, grads, propagate_down):
            if down:
                blob.diff[...] = grad.reshape(blob.shape)
