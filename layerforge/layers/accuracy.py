"""Accuracy: fraction of predictions whose true class is among the top_k scores."""
import numpy as np

from layerforge.layer import Layer
from layerforge.layers.softmax import check_label_count, class_view, read_labels
from layerforge.registry import register_layer


@register_layer("Accuracy")
class AccuracyLayer(Layer):
    """Top 0: accuracy over non-ignored predictions; optional top 1: accuracy of each of the C classes.

    As in Caffe, a score tied with the true class's score counts as better, and a class
    (or a batch) with no labelled predictions reports 0.
    """

    exact_num_bottom = 2
    min_top = 1
    max_top = 2
    has_backward = False

    def setup(self, bottom, top):
        param = self.param.accuracy_param
        self.top_k = param.top_k
        self.ignore_label = param.ignore_label if param.HasField("ignore_label") else None

    def reshape(self, bottom, top):
        self.view = class_view(self, bottom[0], self.param.accuracy_param.axis)
        classes = self.view[1]
        if not 1 <= self.top_k <= classes:
            raise self.error(f"top_k {self.top_k} must be between 1 and the number of classes {classes}")
        check_label_count(self, bottom[1], self.view)
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape((classes,))

    def forward(self, bottom, top):
        scores = bottom[0].data.reshape(self.view)
        labels, valid = read_labels(self, bottom[1], self.view, self.ignore_label)
        true_score = np.take_along_axis(scores, labels[:, None, :], axis=1)
        at_least_as_good = (scores >= true_score).sum(axis=1)  # counts the true class itself
        correct = valid & (at_least_as_good <= self.top_k)
        top[0].data[...] = correct.sum() / valid.sum() if valid.any() else 0
        if len(top) > 1:
            classes = self.view[1]
            seen = np.bincount(labels[valid], minlength=classes)
            hits = np.bincount(labels[correct], minlength=classes)
            top[1].data[...] = np.divide(hits, seen, out=np.zeros(classes), where=seen > 0)
