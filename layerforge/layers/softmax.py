"""Softmax and SoftmaxWithLoss (softmax followed by the multinomial logistic loss)."""
import numpy as np

from layerforge.blob import Blob
from layerforge.kernels.softmax import softmax_backward, softmax_forward
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

FLT_MIN = np.finfo(np.float32).tiny  # Caffe clamps probabilities to FLT_MIN before the log
NORMALIZATION = pb.LossParameter.NormalizationMode


def class_view(layer, blob, axis):
    """Resolve `axis` against `blob` and return the (outer, classes, inner) shape around it."""
    if not -blob.num_axes <= axis < blob.num_axes:
        raise layer.error(f"axis {axis} is out of range for bottom shape {blob.shape}")
    axis %= blob.num_axes
    return blob.count_range(0, axis), blob.shape[axis], blob.count_range(axis + 1)


def check_label_count(layer, blob, view):
    outer, classes, inner = view
    if blob.count != outer * inner:
        raise layer.error(f"label bottom has {blob.count} values (shape {blob.shape}) but there are "
                          f"{outer * inner} predictions ({outer}×{inner} around {classes} classes); "
                          f"give one label per prediction")


def read_labels(layer, blob, view, ignore_label):
    """Labels (integers stored as floats) as an (outer, inner) int array, and the mask of non-ignored ones."""
    outer, classes, inner = view
    labels = blob.data.reshape(outer, inner).astype(np.int64)
    valid = labels != ignore_label if ignore_label is not None else np.ones(labels.shape, bool)
    bad = valid & ((labels < 0) | (labels >= classes))
    if bad.any():
        error = layer.error(f"label {labels[bad][0]} is outside [0, {classes}) for {classes} classes"
                            + (f" and is not ignore_label {ignore_label}" if ignore_label is not None else ""))
        rows_per_item = max(outer // blob.shape[0], 1) if blob.shape and blob.shape[0] else 1
        error.item = int(np.argwhere(bad)[0][0]) // rows_per_item   # the batch item, for the solver's message
        raise error
    return np.where(valid, labels, 0), valid


@register_layer("Softmax")
class SoftmaxLayer(Layer):
    """top = exp(x) / sum(exp(x)) along `axis` (default 1), computed stably; may run in place."""

    exact_num_bottom = 1
    exact_num_top = 1
    allow_in_place = True

    def reshape(self, bottom, top):
        self.view = class_view(self, bottom[0], self.param.softmax_param.axis)
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        softmax_forward(bottom[0].data.reshape(self.view), top[0].data.reshape(self.view))

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            softmax_backward(top[0].data.reshape(self.view), top[0].diff.reshape(self.view),
                             bottom[0].diff.reshape(self.view))


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

    def normalizer(self, valid_count):
        outer, _, inner = self.view
        name = NORMALIZATION.Name(self.normalization)
        count = {"FULL": outer * inner, "VALID": valid_count, "BATCH_SIZE": outer, "NONE": 1}[name]
        return max(1.0, float(count))

    def forward(self, bottom, top):
        prob = self.prob.data.reshape(self.view)
        softmax_forward(bottom[0].data.reshape(self.view), prob)
        self.labels, self.valid = read_labels(self, bottom[1], self.view, self.ignore_label)
        picked = np.take_along_axis(prob, self.labels[:, None, :], axis=1)[:, 0, :]
        loss = -np.sum(np.log(np.maximum(picked[self.valid], FLT_MIN)), dtype=np.float64)
        top[0].data[...] = loss / self.normalizer(int(self.valid.sum()))
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
        dx *= top[0].diff.item() / self.normalizer(int(self.valid.sum()))
        if len(top) > 1:
            through_prob = np.empty_like(dx)
            softmax_backward(prob, top[1].diff.reshape(self.view), through_prob)
            dx += through_prob
