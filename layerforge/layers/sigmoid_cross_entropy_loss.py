"""SigmoidCrossEntropyLoss: cross-entropy of sigmoid(x) against targets in [0, 1], computed stably."""
import numpy as np

from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

NORMALIZATION = pb.LossParameter.NormalizationMode


@register_layer("SigmoidCrossEntropyLoss")
class SigmoidCrossEntropyLossLayer(Layer):
    """loss = sum over non-ignored i of max(x, 0) - x·t + log(1 + exp(-|x|)), over a normalizer.

    Bottoms: scores x and targets t of the same count. A target whose integer part equals
    loss_param.ignore_label is skipped. As in Caffe, the normalization defaults to BATCH_SIZE
    (N = bottom[0].shape[0]) unless `normalization` or the deprecated `normalize` is given;
    every mode is floored at 1. The gradient (sigmoid(x) - t) / normalizer reaches the scores;
    the targets get none (zeros, where Caffe would abort).
    """

    exact_num_bottom = 2
    exact_num_top = 1
    is_loss = True

    def setup(self, bottom, top):
        param = self.param.loss_param
        self.ignore_label = param.ignore_label if param.HasField("ignore_label") else None
        if param.HasField("normalization"):
            self.normalization = NORMALIZATION.Name(param.normalization)
        elif param.HasField("normalize"):
            self.normalization = "VALID" if param.normalize else "BATCH_SIZE"
        else:
            self.normalization = "BATCH_SIZE"

    def reshape(self, bottom, top):
        if bottom[0].count != bottom[1].count:
            raise self.error(f"scores (shape {bottom[0].shape}) and targets (shape {bottom[1].shape}) "
                             f"must have the same count")
        top[0].reshape(())

    def _normalizer(self, bottom, valid_count):
        count = bottom[0].count
        outer = bottom[0].shape[0] if bottom[0].num_axes else 1
        return max(1.0, float({"FULL": count, "VALID": valid_count, "BATCH_SIZE": outer,
                               "NONE": 1}[self.normalization]))

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(-1)
        target = bottom[1].data.reshape(-1)
        if self.ignore_label is None:
            self.valid = None
            valid_count = x.size
        else:
            self.valid = target.astype(np.int64) != self.ignore_label
            valid_count = int(self.valid.sum())
        losses = np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))
        if self.valid is not None:
            losses = losses[self.valid]
        self.normalizer = self._normalizer(bottom, valid_count)
        top[0].data[...] = np.sum(losses, dtype=np.float64) / self.normalizer

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            bottom[1].diff[...] = 0
        if not propagate_down[0]:
            return
        dx = bottom[0].diff
        np.multiply(bottom[0].data, 0.5, out=dx)
        np.tanh(dx, out=dx)
        dx *= 0.5
        dx += 0.5 - bottom[1].data.reshape(dx.shape)
        if self.valid is not None:
            dx *= self.valid.reshape(dx.shape)
        dx *= top[0].diff.item() / self.normalizer
