"""MVN: mean-variance normalization of each item (or each channel of each item)."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("MVN")
class MVNLayer(Layer):
    """y = (x - mean) / (std + eps), or y = x - mean without normalize_variance.

    The statistics are taken over each (item, channel) — axes 2 and beyond — or, with
    across_channels, over each item — axes 1 and beyond. As in Caffe, eps is added to the
    standard deviation (not the variance) and the variance is the biased one. The backward is the
    exact gradient of that forward (Caffe's drops a factor std / (std + eps), negligible at the
    default eps 1e-9).
    """

    exact_num_bottom = 1
    exact_num_top = 1
    allow_in_place = True
    batch_independent = True

    def setup(self, bottom, top):
        param = self.param.mvn_param
        self.normalize_variance = param.normalize_variance
        self.across_channels = param.across_channels
        self.eps = param.eps

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        groups_axis = 1 if self.across_channels else 2
        if len(shape) < groups_axis:
            raise self.error(f"needs a bottom with at least {groups_axis} axes, got shape {shape}")
        rows = bottom[0].count_range(0, groups_axis)
        self.view = (rows, bottom[0].count // rows if rows else 0)
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.view)
        y = top[0].data.reshape(self.view)
        centred = x - x.mean(axis=1, keepdims=True, dtype=np.float64)
        if self.normalize_variance:
            self.std = np.sqrt(np.mean(centred ** 2, axis=1, keepdims=True))
            centred /= self.std + self.eps
            self.y = centred  # kept: later in-place layers may overwrite the top
        y[...] = centred

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.view).astype(np.float64)
        dx = bottom[0].diff.reshape(self.view)
        centred_dy = dy - dy.mean(axis=1, keepdims=True)
        if not self.normalize_variance:
            dx[...] = centred_dy
            return
        y = self.y
        denominator = self.std + self.eps
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(self.std > 0, denominator / self.std, 0.0)
        dx[...] = (centred_dy - y * np.mean(dy * y, axis=1, keepdims=True) * ratio) / denominator
