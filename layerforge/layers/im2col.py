"""Im2col: a convolution's column matrix as a layer's output (Caffe's Im2colLayer)."""
import math

import numpy as np

from layerforge.kernels.im2col import col2im, col2im_nd, im2col, im2col_nd
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Im2col")
class Im2colLayer(Layer):
    """Reads convolution_param (kernel, stride, pad, dilation, axis, force_nd_im2col; num_output and
    the fillers are unused). For each item (the axes before `axis`), top[n] is the
    (C·∏kernel) × out_1 × … × out_k matrix a convolution would multiply, rows in Caffe's
    (channel, kernel offset) order, padding read as 0. Backward sums each column entry back into
    the pixel it came from. Two spatial axes run on the 2-D im2col kernel, any other number (or
    force_nd_im2col) on the N-D one.
    """

    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def batch_independent_for(self, bottom):
        return self.axis > 0        # with channel axis 0 there is no item axis

    def _spatial(self, name, values, default, h_name=None, w_name=None):
        """Caffe's rule: `name` once or once per spatial axis, or name_h and name_w (2-D), not both."""
        cp, axes = self.param.convolution_param, self.spatial_axes
        if h_name and (cp.HasField(h_name) or cp.HasField(w_name)):
            if axes != 2 or values or not (cp.HasField(h_name) and cp.HasField(w_name)):
                raise self.error(f"convolution_param: give {name}, or (for two spatial axes) both "
                                 f"{h_name} and {w_name}")
            return getattr(cp, h_name), getattr(cp, w_name)
        if not values:
            if default is None:
                raise self.error(f"convolution_param: {name} is required")
            return (default,) * axes
        if len(values) not in (1, axes):
            raise self.error(f"convolution_param: {name} must be given once or once per spatial axis "
                             f"({axes}), got {len(values)} values")
        return tuple(values) * (axes // len(values))

    def setup(self, bottom, top):
        cp = self.param.convolution_param
        try:
            self.axis = bottom[0].canonical_axis(cp.axis)
        except ValueError as e:
            raise self.error(f"convolution_param.axis: {e}") from None
        self.spatial_axes = bottom[0].num_axes - self.axis - 1
        if self.spatial_axes < 1:
            raise self.error(f"bottom shape {bottom[0].shape} has no spatial axis after the channel "
                             f"axis {self.axis}")
        self.kernel = self._spatial("kernel_size", cp.kernel_size, None, "kernel_h", "kernel_w")
        self.stride = self._spatial("stride", cp.stride, 1, "stride_h", "stride_w")
        self.pad = self._spatial("pad", cp.pad, 0, "pad_h", "pad_w")
        self.dilation = self._spatial("dilation", cp.dilation, 1)
        for name, values in (("kernel size", self.kernel), ("stride", self.stride), ("dilation", self.dilation)):
            if min(values) <= 0:
                raise self.error(f"convolution_param: {name} must be > 0, got {values}")
        self.nd = cp.force_nd_im2col or self.spatial_axes != 2
        self.nd_geometry = tuple(np.array(values, np.int64) for values in
                                 (self.kernel, self.stride, self.pad, self.dilation))

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != self.axis + 1 + self.spatial_axes:
            raise self.error(f"bottom shape {shape} must have {self.spatial_axes} spatial axes after "
                             f"axis {self.axis}, as at set-up")
        channels, sizes = shape[self.axis], shape[self.axis + 1:]
        self.out = tuple((size + 2 * p - (d * (k - 1) + 1)) // s + 1 for size, k, s, p, d in
                         zip(sizes, self.kernel, self.stride, self.pad, self.dilation))
        if min(self.out) <= 0:
            raise self.error(f"the {self.kernel} kernel (dilation {self.dilation}, pad {self.pad}) does not "
                             f"fit the input {sizes}")
        top[0].reshape(shape[:self.axis] + (channels * math.prod(self.kernel),) + self.out)
        self.image_shape = np.array(sizes, np.int64)
        self.images = (-1, 1, channels, math.prod(sizes))       # item n: a batch of one image
        self.image_2d = (1,) + shape[self.axis:]
        self.columns = (-1, top[0].shape[self.axis], math.prod(self.out))

    def forward(self, bottom, top):
        images = bottom[0].data.reshape(self.images)
        columns = top[0].data.reshape(self.columns)
        for n in range(images.shape[0]):
            if self.nd:
                im2col_nd(images[n], self.image_shape, *self.nd_geometry, columns[n])
            else:
                im2col(images[n].reshape(self.image_2d), *self.kernel, *self.stride, *self.pad, *self.dilation,
                       columns[n])

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        images = bottom[0].diff.reshape(self.images)
        columns = top[0].diff.reshape(self.columns)
        for n in range(images.shape[0]):
            if self.nd:
                col2im_nd(columns[n], self.image_shape, *self.nd_geometry, images[n])
            else:
                col2im(columns[n], *self.kernel, *self.stride, *self.pad, *self.dilation,
                       images[n].reshape(self.image_2d))
