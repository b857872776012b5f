"""Im2col: a convolution's column matrix as a layer's output (Caffe's Im2colLayer)."""
from layerforge.kernels.im2col import col2im, im2col, out_size
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("Im2col")
class Im2colLayer(Layer):
    """Reads convolution_param (kernel, stride, pad, dilation, axis; num_output and the fillers are
    unused). For each item, top[n] is the (C·kh·kw) × out_h × out_w matrix a convolution would
    multiply, rows in Caffe's (channel, kernel_y, kernel_x) order, padding read as 0. Backward
    sums each column entry back into the pixel it came from. Two spatial axes only.
    """

    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def batch_independent_for(self, bottom):
        return self.axis > 0        # with channel axis 0 there is no item axis

    def _spatial(self, name, values, default, h_name=None, w_name=None):
        """Caffe's rule: `name` once or once per spatial axis, or name_h and name_w, not both."""
        cp = self.param.convolution_param
        if h_name and (cp.HasField(h_name) or cp.HasField(w_name)):
            if values or not (cp.HasField(h_name) and cp.HasField(w_name)):
                raise self.error(f"convolution_param: give {name}, or both {h_name} and {w_name}")
            return getattr(cp, h_name), getattr(cp, w_name)
        if len(values) > 2 or (not values and default is None):
            raise self.error(f"convolution_param: {name} must be given once or once per spatial axis "
                             f"(2), got {len(values)} values")
        return tuple(values) * (2 // len(values)) if values else (default, default)

    def setup(self, bottom, top):
        cp = self.param.convolution_param
        try:
            self.axis = bottom[0].canonical_axis(cp.axis)
        except ValueError as e:
            raise self.error(f"convolution_param.axis: {e}") from None
        if bottom[0].num_axes - self.axis - 1 != 2:
            raise self.error(f"only two spatial axes are supported: bottom shape {bottom[0].shape} has "
                             f"{bottom[0].num_axes - self.axis - 1} after the channel axis {self.axis}")
        self.kernel = self._spatial("kernel_size", cp.kernel_size, None, "kernel_h", "kernel_w")
        self.stride = self._spatial("stride", cp.stride, 1, "stride_h", "stride_w")
        self.pad = self._spatial("pad", cp.pad, 0, "pad_h", "pad_w")
        self.dilation = self._spatial("dilation", cp.dilation, 1)
        for name, pair in (("kernel size", self.kernel), ("stride", self.stride), ("dilation", self.dilation)):
            if min(pair) <= 0:
                raise self.error(f"convolution_param: {name} must be > 0, got {pair}")

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != self.axis + 3:
            raise self.error(f"bottom shape {shape} must have two spatial axes after axis {self.axis}")
        channels, height, width = shape[self.axis:]
        out = [out_size(size, k, s, p, d) for size, k, s, p, d in
               zip((height, width), self.kernel, self.stride, self.pad, self.dilation)]
        if min(out) <= 0:
            raise self.error(f"the {self.kernel} kernel (dilation {self.dilation}, pad {self.pad}) does not "
                             f"fit the {height}×{width} input")
        top[0].reshape(shape[:self.axis] + (channels * self.kernel[0] * self.kernel[1],) + tuple(out))
        self.images = (-1,) + shape[self.axis:]
        self.columns = (-1, top[0].shape[self.axis], out[0] * out[1])

    def _geometry(self):
        return self.kernel + self.stride + self.pad + self.dilation

    def forward(self, bottom, top):
        images = bottom[0].data.reshape(self.images)
        columns = top[0].data.reshape(self.columns)
        for n in range(images.shape[0]):
            im2col(images[n:n + 1], *self._geometry(), columns[n])

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        images = bottom[0].diff.reshape(self.images)
        columns = top[0].diff.reshape(self.columns)
        for n in range(images.shape[0]):
            col2im(columns[n], *self._geometry(), images[n:n + 1])
