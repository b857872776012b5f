"""SPP: spatial pyramid pooling, as Caffe's SPPLayer computes it.

Level l (0 .. pyramid_height-1) pools each plane into about 2^l x 2^l bins: Caffe picks
kernel = stride = ceil(size / 2^l) and pad = (kernel * 2^l - size + 1) // 2 per axis and
runs a Pooling layer with them (ceil output size, Caffe's padding rules). The levels are
flattened per item and concatenated: top (N, C * sum of bins), level 0 first. With
pyramid_height 1 the top is the pooling output itself, (N, C, 1, 1), as in Caffe.
"""
import numpy as np

from layerforge.kernels.pooling import ave_pool_backward, ave_pool_forward, max_pool_backward, max_pool_forward
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

_SPP = pb.SPPParameter


def _level_geometry(size, bins):
    """Caffe's (kernel, pad, pooled size) of one pyramid level along one axis."""
    kernel = -(-size // bins)
    pad = (kernel * bins - size + 1) // 2
    pooled = -(-(size + 2 * pad - kernel) // kernel) + 1
    if pad > 0 and (pooled - 1) * kernel >= size + pad:
        pooled -= 1
    return kernel, pad, pooled


@register_layer("SPP")
class SPP(Layer):
    """Spatial pyramid pooling of an (N, C, H, W) bottom (spp_param: pyramid_height, pool MAX/AVE)."""

    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def setup(self, bottom, top):
        sp = self.param.spp_param
        if sp.pyramid_height < 1:
            raise self.error("spp_param.pyramid_height must be given and >= 1")
        if sp.pool not in (_SPP.MAX, _SPP.AVE):
            raise self.error(f"spp_param.pool {_SPP.PoolMethod.Name(sp.pool)} is not supported; use MAX or AVE")
        self.pool_max = sp.pool == _SPP.MAX

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != 4 or min(shape[2:]) <= 0:
            raise self.error(f"bottom must be (num, channels, height, width) with a non-empty plane, got {shape}")
        num, channels, height, width = shape
        self.levels = []   # (kernel_h, kernel_w, pad_h, pad_w, pooled plane array, argmax)
        for level in range(self.param.spp_param.pyramid_height):
            (kh, ph, oh), (kw, pw, ow) = (_level_geometry(size, 2 ** level) for size in (height, width))
            if ph >= kh or pw >= kw:
                raise self.error(f"pyramid level {level} of a {height}x{width} input needs pad ({ph}, {pw}) "
                                 f"smaller than its kernel ({kh}, {kw}), as Caffe's Pooling does; "
                                 f"use a lower pyramid_height or a larger input")
            pooled = np.empty((num * channels, oh, ow), bottom[0].dtype)
            argmax = np.empty(pooled.shape, np.int32) if self.pool_max else None
            self.levels.append((kh, kw, ph, pw, pooled, argmax))
        if len(self.levels) == 1:
            top[0].reshape((num, channels) + self.levels[0][4].shape[1:])
        else:
            top[0].reshape((num, sum(channels * p.shape[1] * p.shape[2] for *_, p, _ in self.levels)))
        self.plane_diff = np.empty((num * channels, height, width), bottom[0].dtype)

    def forward(self, bottom, top):
        planes = bottom[0].data.reshape((-1,) + bottom[0].shape[2:])
        out = top[0].data.reshape(bottom[0].shape[0], -1)
        start = 0
        for kh, kw, ph, pw, pooled, argmax in self.levels:
            if self.pool_max:
                max_pool_forward(planes, kh, kw, kh, kw, ph, pw, pooled, argmax)
            else:
                ave_pool_forward(planes, kh, kw, kh, kw, ph, pw, pooled)
            width = pooled.size // len(out)
            out[:, start:start + width] = pooled.reshape(len(out), -1)
            start += width

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        bottom_diff = bottom[0].diff.reshape(self.plane_diff.shape)
        top_diff = top[0].diff.reshape(bottom[0].shape[0], -1)
        start = 0
        for index, (kh, kw, ph, pw, pooled, argmax) in enumerate(self.levels):
            width = pooled.size // len(top_diff)
            pooled_diff = np.ascontiguousarray(top_diff[:, start:start + width]).reshape(pooled.shape)
            start += width
            target = bottom_diff if index == 0 else self.plane_diff
            if self.pool_max:
                max_pool_backward(pooled_diff, argmax, target)
            else:
                ave_pool_backward(pooled_diff, kh, kw, kh, kw, ph, pw, target)
            if index > 0:
                bottom_diff += self.plane_diff
