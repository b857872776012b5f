"""InfogainLoss: softmax, then the multinomial logistic loss weighted by an infogain matrix H."""
import numpy as np

from layerforge import io
from layerforge.blob import Blob
from layerforge.kernels.softmax import softmax_backward, softmax_forward
from layerforge.layer import Layer
from layerforge.layers.softmax import check_label_count, class_view, normalizer, read_labels
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

LOG_THRESHOLD = 1e-20   # Caffe's kLOG_THRESHOLD: probabilities are clamped to it before the log


@register_layer("InfogainLoss")
class InfogainLoss(Layer):
    """loss = -sum over predictions of sum_l H[label, l] · log(softmax(x)_l), / normalizer.

    Bottoms: scores, labels (one per prediction around `infogain_loss_param.axis`) and
    optionally H (L×L values); without the third bottom H is read from the binary BlobProto
    `infogain_loss_param.source`. H = identity is SoftmaxWithLoss. `loss_param` gives
    ignore_label and normalization (VALID by default) as in Caffe. Optional top 1 is the
    softmax; a gradient arriving on it is passed back through the softmax (Caffe drops it).
    The labels and H receive no gradient.
    """

    min_bottom = 2
    max_bottom = 3
    min_top = 1
    max_top = 2
    is_loss = True

    def setup(self, bottom, top):
        param = self.param.loss_param
        if param.HasField("normalize"):
            raise self.error("loss_param.normalize is deprecated and Caffe's InfogainLoss refuses it; "
                             "use normalization")
        self.ignore_label = param.ignore_label if param.HasField("ignore_label") else None
        self.normalization = param.normalization
        self.prob = Blob(dtype=bottom[0].dtype)
        self.source_h = None
        if len(bottom) < 3:
            source = self.param.infogain_loss_param.source
            if not source:
                raise self.error("give the infogain matrix H as infogain_loss_param.source "
                                 "(a .binaryproto) or as a third bottom")
            try:
                self.source_h = io.blobproto_to_array(io.read_binary(source, pb.BlobProto()), source).astype(bottom[0].dtype)
            except io.ConfigError as err:
                raise self.error(f"infogain_loss_param.source: {err}") from None

    def reshape(self, bottom, top):
        self.view = class_view(self, bottom[0], self.param.infogain_loss_param.axis)
        check_label_count(self, bottom[1], self.view)
        labels = self.view[1]
        count = bottom[2].count if len(bottom) > 2 else self.source_h.size
        if count != labels * labels:
            raise self.error(f"the infogain matrix H has {count} values; {labels} classes need "
                             f"{labels}x{labels} = {labels * labels}")
        self.prob.reshape_like(bottom[0])
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape_like(bottom[0])

    def _infogain(self, bottom):
        labels = self.view[1]
        h = bottom[2].data if len(bottom) > 2 else self.source_h
        return h.reshape(labels, labels)

    def forward(self, bottom, top):
        prob = self.prob.data.reshape(self.view)
        softmax_forward(bottom[0].data.reshape(self.view), prob)
        self.labels, self.valid = read_labels(self, bottom[1], self.view, self.ignore_label)
        weights = self._infogain(bottom)[self.labels].transpose(0, 2, 1)   # (outer, L, inner): H[label, l]
        log_prob = np.log(np.maximum(prob, LOG_THRESHOLD))
        loss = -np.sum(weights * log_prob * self.valid[:, None, :], dtype=np.float64)
        top[0].data[...] = loss / normalizer(self.normalization, self.view, int(self.valid.sum()))
        if len(top) > 1:
            top[1].data[...] = self.prob.data

    def backward(self, top, propagate_down, bottom):
        for i in range(1, len(bottom)):
            if propagate_down[i]:
                bottom[i].diff[...] = 0
        if not propagate_down[0]:
            return
        h = self._infogain(bottom)
        prob = self.prob.data.reshape(self.view)
        dx = bottom[0].diff.reshape(self.view)
        # d/dx of -sum_l H[y, l] log p_l = p · sum_l H[y, l] - H[y, :]
        dx[...] = prob * h.sum(axis=1)[self.labels][:, None, :] - h[self.labels].transpose(0, 2, 1)
        dx *= self.valid[:, None, :]
        dx *= top[0].diff.item() / normalizer(self.normalization, self.view, int(self.valid.sum()))
        if len(top) > 1:
            through_prob = np.empty_like(dx)
            softmax_backward(prob, top[1].diff.reshape(self.view), through_prob)
            dx += through_prob
