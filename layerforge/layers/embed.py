"""Embed: a lookup table from integer indices to learned vectors (Caffe's EmbedLayer)."""
import numpy as np

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Embed")
class EmbedLayer(Layer):
    """top[..., :] = weight[index] + bias for each value of the bottom (integers in [0, input_dim)).

    The weight is input_dim × num_output (InnerProduct's transposed, as Caffe has it), the bias
    num_output. The top has the bottom's shape plus a last axis of num_output. The indices get no
    gradient (zeros; Caffe aborts); each weight row gathers the top gradients of its index.
    """

    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def setup(self, bottom, top):
        param = self.param.embed_param
        for field in ("num_output", "input_dim"):
            if getattr(param, field) <= 0:
                raise self.error(f"embed_param.{field} must be positive, got {getattr(param, field)}")
        self.num_output, self.input_dim = param.num_output, param.input_dim
        dtype = bottom[0].dtype
        self.blobs = [Blob((self.input_dim, self.num_output), dtype)]
        fill(self.blobs[0], param.weight_filler, self.rng)
        if param.bias_term:
            self.blobs.append(Blob((self.num_output,), dtype))
            fill(self.blobs[1], param.bias_filler, self.rng)

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape + (self.num_output,))

    def _indices(self, bottom):
        values = bottom[0].data.reshape(-1)
        indices = values.astype(np.int64)
        bad = (indices != values) | (indices < 0) | (indices >= self.input_dim)
        if bad.any():
            raise self.error(f"index {values[bad][0]:g} is not an integer in [0, {self.input_dim}) "
                             f"(embed_param.input_dim)")
        return indices

    def forward(self, bottom, top):
        self.indices = self._indices(bottom)
        y = top[0].data.reshape(-1, self.num_output)
        np.take(self.blobs[0].data, self.indices, axis=0, out=y)
        if len(self.blobs) > 1:
            y += self.blobs[1].data

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff.reshape(-1, self.num_output)
        np.add.at(self.blobs[0].diff, self.indices, dy)
        if len(self.blobs) > 1:
            self.blobs[1].diff += dy.sum(axis=0)
        if propagate_down[0]:
            bottom[0].diff[...] = 0
