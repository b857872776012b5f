"""AccuracyDecode: the fraction of items whose nearest class (by Decode's distances) is their label."""
import numpy as np

from layerforge.layer import Layer
from layerforge.layers.decode import FLT_MAX
from layerforge.registry import register_layer


@register_layer("AccuracyDecode")
class AccuracyDecodeLayer(Layer):
    """Fraction of rows whose smallest Decode distance is at the row's label.

    Bottoms: distances (N x L) and labels (N, or N x K whose column 0 is used). Rows labelled
    accuracy_param.ignore_label are skipped; a row whose every distance is FLT_MAX (no class
    learned yet) counts as wrong.
    """

    exact_num_bottom = 2
    exact_num_top = 1
    has_backward = False

    def setup(self, bottom, top):
        if self.param.accuracy_param.top_k != 1:
            raise self.error(f"accuracy_param.top_k {self.param.accuracy_param.top_k} is not supported; use 1")

    def reshape(self, bottom, top):
        n = bottom[0].shape[0]
        if bottom[1].num_axes == 0 or bottom[1].shape[0] != n:
            raise self.error(f"labels bottom {bottom[1].shape} must have {n} rows, one per distance row")
        top[0].reshape(())

    def forward(self, bottom, top):
        n = bottom[0].shape[0]
        dist = bottom[0].data.reshape(n, -1)
        labels = bottom[1].data.reshape(n, -1)[:, 0].astype(np.int64)
        p = self.param.accuracy_param
        keep = labels != p.ignore_label if p.HasField("ignore_label") else np.ones(n, bool)
        if dist.shape[1] == 0 or not keep.any():
            top[0].data[...] = 0
            return
        best = dist.argmin(axis=1)
        correct = (best == labels) & (dist.min(axis=1) < FLT_MAX)
        top[0].data[...] = correct[keep].mean()
