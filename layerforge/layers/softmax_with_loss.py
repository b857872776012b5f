"""SoftmaxWithLoss: softmax followed by the multinomial logistic loss, with Caffe's normalization modes."""
import numpy as np

from layerforge.blob import Blob
from layerforge.kernels.softmax import softmax_backward, softmax_forward
from layerforge.layer import Layer
from layerforge.layers.softmax import NORMALIZATION, check_label_count, class_view, normalizer, read_labels
from layerforge.registry import register_layer

FLT_MIN = np.finfo(np.float32).tiny  # Caffe clamps probabilities to FLT_MIN before the log


@register_layer("SoftmaxWithLoss")
class SoftmaxWithLossLayer(Layer):
    """loss = -sum log(softmax(x)[label]) / normalizer over non-ignored predictions.

    Bottoms: scores, labels (one per prediction: N, or N×1×H×W for axis 1). Optional top 1 is
    the probabilities; unlike Caffe, a gradient arriving on it is passed back too, so the
    layer's backward matches its forward exactly. The labels never receive a gradient.
    """

    exact_num_bottom = 2
    min_top = 1
    max_top = 2
    is_loss = True

    def setup(self, bottom, top):
        param = self.param.loss_param
        self.ignore_label = param.ignore_label if param.HasField("ignore_label") else None
        if param.HasField("normalize") and not param.HasField("normalization"):
            self.normalization = NORMALIZATION.Value("VALID" if param.normalize else "BATCH_SIZE")
        else:
            self.normalization = param.normalization
        self.prob = Blob(dtype=bottom[0].dtype)

    def reshape(self, bottom, top):
        self.view = class_view(self, bottom[0], self.param.softmax_param.axis)
        check_label_count(self, bottom[1], self.view)
        self.prob.reshape_like(bottom[0])
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape_like(bottom[0])

    def forward(self, bottom, top):
        prob = self.prob.data.reshape(self.view)
        softmax_forward(bottom[0].data.reshape(self.view), prob)
        self.labels, self.valid = read_labels(self, bottom[1], self.view, self.ignore_label)
        picked = np.take_along_axis(prob, self.labels[:, None, :], axis=1)[:, 0, :]
        loss = -np.sum(np.log(np.maximum(picked[self.valid], FLT_MIN)), dtype=np.float64)
        top[0].data[...] = loss / normalizer(self.normalization, self.view, int(self.valid.sum()))
        if len(top) > 1:
            top[1].data[...] = self.prob.data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            bottom[1].diff[...] = 0
        if not propagate_down[0]:
            return
        prob = self.prob.data.reshape(self.view)
        dx = bottom[0].diff.reshape(self.view)
        np.copyto(dx, prob)
        index = self.labels[:, None, :]
        np.put_along_axis(dx, index, np.take_along_axis(dx, index, axis=1) - 1, axis=1)
        dx *= self.valid[:, None, :]
        dx *= top[0].diff.item() / normalizer(self.normalization, self.view, int(self.valid.sum()))
        if len(top) > 1:
            through_prob = np.empty_like(dx)
            softmax_backward(prob, top[1].diff.reshape(self.view), through_prob)
            dx += through_prob
