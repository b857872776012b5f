"""Pooling: MAX (with an optional argmax top) and AVE over 2-D planes, as in Caffe."""
import numpy as np

from layerforge.kernels.pooling import (ave_pool_backward, ave_pool_forward, max_pool_2x2_forward,
                                        max_pool_backward, max_pool_forward)
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

_POOL = pb.PoolingParameter


@register_layer("Pooling")
class PoolingLayer(Layer):
    """MAX or AVE pooling of an (N, C, H, W) bottom; no parameters.

    The output size follows Caffe: ceil (default) or floor of (H + 2*pad - kernel) / stride,
    plus 1, minus 1 when pad > 0 and the last window would start in the padding.
    With MAX, an optional second top holds each maximum's flat index y * W + x in its plane.
    """

    exact_num_bottom = 1
    min_top = 1
    max_top = 2
    batch_independent = True

    def _pair(self, name, prefix, default):
        """`name`, or prefix_h and prefix_w (both), not both forms."""
        pp = self.param.pooling_param
        h_name, w_name = prefix + "_h", prefix + "_w"
        has_h, has_w = pp.HasField(h_name), pp.HasField(w_name)
        if has_h or has_w:
            if pp.HasField(name):
                raise self.error(f"pooling_param: give either {name} or {h_name}/{w_name}, not both")
            if not (has_h and has_w):
                raise self.error(f"pooling_param: {h_name} and {w_name} must be given together")
            return getattr(pp, h_name), getattr(pp, w_name)
        if pp.HasField(name):
            return getattr(pp, name), getattr(pp, name)
        return default

    def setup(self, bottom, top):
        pp = self.param.pooling_param
        if pp.pool not in (_POOL.MAX, _POOL.AVE):
            raise self.error(f"pooling_param.pool {_POOL.PoolMethod.Name(pp.pool)} is not "
                             f"supported; use MAX or AVE")
        if len(top) > 1 and pp.pool != _POOL.MAX:
            raise self.error("a second top (the argmax) is only available with pool: MAX")
        self.stride = self._pair("stride", "stride", (1, 1))
        self.pad = self._pair("pad", "pad", (0, 0))
        has_kernel = pp.HasField("kernel_size") or pp.HasField("kernel_h") or pp.HasField("kernel_w")
        if pp.global_pooling:
            if has_kernel:
                raise self.error("pooling_param: global_pooling takes the whole plane; do not "
                                 "give kernel_size/kernel_h/kernel_w")
            if self.pad != (0, 0) or self.stride != (1, 1):
                raise self.error(f"pooling_param: global_pooling needs pad 0 and stride 1, got "
                                 f"pad {self.pad} and stride {self.stride}")
        else:
            if not has_kernel:
                raise self.error("pooling_param: kernel_size (or kernel_h and kernel_w) is required")
            self.kernel = self._pair("kernel_size", "kernel", None)
            if min(self.kernel) <= 0:
                raise self.error(f"pooling_param: kernel size must be > 0, got {self.kernel}")
            if self.pad[0] >= self.kernel[0] or self.pad[1] >= self.kernel[1]:
                raise self.error(f"pooling_param: pad {self.pad} must be smaller than the kernel "
                                 f"{self.kernel}")
        if min(self.stride) <= 0:
            raise self.error(f"pooling_param: stride must be > 0, got {self.stride}")

    def _pooled_size(self, size, kernel, stride, pad):
        span = size + 2 * pad - kernel
        if span < 0:
            raise self.error(f"kernel {kernel} is larger than the padded input {size} + 2*{pad}")
        steps = span // stride if self.param.pooling_param.round_mode == _POOL.FLOOR else -(-span // stride)
        pooled = steps + 1
        if pad > 0 and (pooled - 1) * stride >= size + pad:
            pooled -= 1  # Caffe: the last window must start inside the image or its left padding
        if (pooled - 1) * stride - pad >= size:
            raise self.error(f"the last pooling window starts outside the input (size {size}, "
                             f"kernel {kernel}, stride {stride}); use round_mode: FLOOR or a "
                             f"smaller stride")
        return pooled

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != 4:
            raise self.error(f"bottom must have 4 axes (num, channels, height, width), got shape {shape}")
        num, channels, height, width = shape
        if self.param.pooling_param.global_pooling:
            self.kernel = (height, width)
        pooled = tuple(self._pooled_size(size, k, s, p) for size, k, s, p in
                       zip((height, width), self.kernel, self.stride, self.pad))
        for blob in top:
            blob.reshape((num, channels) + pooled)
        # LeNet's 2x2/stride-2 windows tiling the plane exactly have an unrolled kernel.
        self.tiles_2x2 = (self.kernel == (2, 2) and self.stride == (2, 2) and self.pad == (0, 0)
                          and (height, width) == (2 * pooled[0], 2 * pooled[1]))
        if self.param.pooling_param.pool == _POOL.MAX:
            self.buffer("argmax", (num * channels,) + pooled, np.int32)

    def _planes(self, array):
        return array.reshape((-1,) + array.shape[2:])

    def forward(self, bottom, top):
        geometry = self.kernel + self.stride + self.pad
        planes, planes_top = self._planes(bottom[0].data), self._planes(top[0].data)
        if self.param.pooling_param.pool == _POOL.MAX:
            if self.tiles_2x2:
                max_pool_2x2_forward(planes, planes_top, self.argmax)
            else:
                max_pool_forward(planes, *geometry, planes_top, self.argmax)
            if len(top) > 1:
                top[1].data[...] = self.argmax.reshape(top[1].shape)
        else:
            ave_pool_forward(planes, *geometry, planes_top)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        top_diff, bottom_diff = self._planes(top[0].diff), self._planes(bottom[0].diff)
        if self.param.pooling_param.pool == _POOL.MAX:
            max_pool_backward(top_diff, self.argmax, bottom_diff)
        else:
            ave_pool_backward(top_diff, *self.kernel, *self.stride, *self.pad, bottom_diff)
