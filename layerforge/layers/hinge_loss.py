"""HingeLoss: Caffe's one-vs-all hinge loss over N items of D class scores, L1 or L2."""
import numpy as np

from layerforge.layer import Layer
from layerforge.layers.softmax import check_label_count, read_labels
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


@register_layer("HingeLoss")
class HingeLossLayer(Layer):
    """t[i, j] = max(0, 1 + δ·x[i, j]) with δ = -1 for the item's label j and +1 for the other
    classes; loss = Σ t / N (L1, default) or Σ t² / N (L2). The labels get no gradient."""

    exact_num_bottom = 2
    exact_num_top = 1
    is_loss = True

    def setup(self, bottom, top):
        self.l2 = self.param.hinge_loss_param.norm == pb.HingeLossParameter.L2

    def reshape(self, bottom, top):
        if bottom[0].num_axes == 0 or bottom[0].shape[0] == 0:
            raise self.error(f"needs scores of shape N×D…, got {bottom[0].shape}")
        self.view = (bottom[0].shape[0], bottom[0].count // bottom[0].shape[0])
        check_label_count(self, bottom[1], self.view + (1,))
        top[0].reshape(())

    def forward(self, bottom, top):
        labels = read_labels(self, bottom[1], self.view + (1,), None)[0][:, 0]
        self.sign = np.ones(self.view)
        self.sign[np.arange(self.view[0]), labels] = -1
        self.margin = np.maximum(0.0, 1 + self.sign * bottom[0].data.reshape(self.view))
        total = np.sum(self.margin ** 2) if self.l2 else np.sum(self.margin)
        top[0].data[...] = total / self.view[0]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            bottom[1].diff[...] = 0
        if not propagate_down[0]:
            return
        scale = top[0].diff.item() / self.view[0]
        dx = bottom[0].diff.reshape(self.view)
        if self.l2:
            np.multiply(self.sign * self.margin, 2 * scale, out=dx)
        else:
            np.multiply(self.sign * (self.margin > 0), scale, out=dx)
