"""Normalize: L2 normalisation of each item (or of each spatial position) across channels."""
import numpy as np

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Normalize")
class NormalizeLayer(Layer):
    """top = scale · bottom / sqrt(Σ bottom² + eps), SSD's Normalize.

    The sum runs over each item's C·H·W values (`across_spatial`, the default: an N×D
    encoding becomes a unit vector), or over the C channels at each position. With
    `scale_filler` the layer learns a scale, one value or one per channel
    (`channel_shared`), as SSD does; without it there is no parameter and the norm is 1.
    """

    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def setup(self, bottom, top):
        param = self.param.normalize_param
        self.across_spatial = param.across_spatial
        self.eps = float(param.eps)
        if param.HasField("scale_filler"):
            self.channel_shared = param.channel_shared
            scale = Blob(() if self.channel_shared else (bottom[0].shape[1],), bottom[0].dtype)
            fill(scale, param.scale_filler, self.rng)
            self.blobs = [scale]

    def reshape(self, bottom, top):
        if bottom[0].num_axes < 2:
            raise self.error(f"needs a bottom with at least 2 axes (N, C, ...), got shape {bottom[0].shape}")
        if self.blobs and not self.channel_shared and self.blobs[0].count != bottom[0].shape[1]:
            raise self.error(f"bottom has {bottom[0].shape[1]} channels (shape {bottom[0].shape}) but the "
                             f"scale has shape {self.blobs[0].shape}")
        top[0].reshape_like(bottom[0])

    def _sum(self, values):
        """Sums over the normalised axes of an N×C×S array, kept for broadcasting."""
        return values.sum(axis=(1, 2) if self.across_spatial else 1, keepdims=True)

    def _scale(self):
        return self.blobs[0].data.reshape(1, -1, 1) if self.blobs else 1.0

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(bottom[0].shape[0], bottom[0].shape[1], -1)
        self.norm = np.sqrt(self._sum(x * x) + self.eps)
        self.unit = x / self.norm
        top[0].data[...] = (self.unit * self._scale()).reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff.reshape(self.unit.shape)
        if self.blobs:
            self.blobs[0].diff += (np.sum(dy * self.unit) if self.channel_shared
                                   else np.sum(dy * self.unit, axis=(0, 2)))
        if propagate_down[0]:
            g = dy * self._scale()
            bottom[0].diff[...] = ((g - self.unit * self._sum(g * self.unit)) / self.norm).reshape(bottom[0].shape)
