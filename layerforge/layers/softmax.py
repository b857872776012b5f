"""Softmax, and the label helpers the classification losses and Accuracy share."""
import numpy as np

from layerforge.kernels.softmax import softmax_backward, softmax_forward
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

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


def normalizer(normalization, view, valid_count):
    """Caffe's GetNormalizer: what a softmax-based loss divides by (never below 1)."""
    outer, _, inner = view
    name = NORMALIZATION.Name(normalization)
    count = {"FULL": outer * inner, "VALID": valid_count, "BATCH_SIZE": outer, "NONE": 1}[name]
    return max(1.0, float(count))


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
