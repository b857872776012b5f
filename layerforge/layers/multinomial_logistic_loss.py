"""MultinomialLogisticLoss: -log of the probability given to each item's label (bottom = probabilities)."""
import numpy as np

from layerforge.layer import Layer
from layerforge.layers.softmax import check_label_count, read_labels
from layerforge.registry import register_layer

LOG_THRESHOLD = 1e-20  # Caffe's kLOG_THRESHOLD: probabilities are clamped to it before the log


@register_layer("MultinomialLogisticLoss")
class MultinomialLogisticLossLayer(Layer):
    """loss = -1/N Σ log(max(p[i, label_i], 1e-20)) over N items of D probabilities.

    The gradient is -1 / (N · max(p, 1e-20)) at each label and 0 elsewhere, as in Caffe (also
    below the clamp, where it keeps pushing the probability up). The labels get no gradient.
    """

    exact_num_bottom = 2
    exact_num_top = 1
    is_loss = True

    def reshape(self, bottom, top):
        if bottom[0].num_axes == 0 or bottom[0].shape[0] == 0:
            raise self.error(f"needs probabilities of shape N×D…, got {bottom[0].shape}")
        self.view = (bottom[0].shape[0], bottom[0].count // bottom[0].shape[0])
        check_label_count(self, bottom[1], self.view + (1,))
        top[0].reshape(())

    def forward(self, bottom, top):
        self.labels = read_labels(self, bottom[1], self.view + (1,), None)[0][:, 0]
        picked = bottom[0].data.reshape(self.view)[np.arange(self.view[0]), self.labels]
        self.picked = np.maximum(picked.astype(np.float64), LOG_THRESHOLD)
        top[0].data[...] = -np.sum(np.log(self.picked)) / self.view[0]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            bottom[1].diff[...] = 0
        if not propagate_down[0]:
            return
        dx = bottom[0].diff.reshape(self.view)
        dx[...] = 0
        dx[np.arange(self.view[0]), self.labels] = -top[0].diff.item() / self.view[0] / self.picked
