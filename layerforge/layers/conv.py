"""Convolution and Deconvolution (transposed convolution) over 2-D images, as in Caffe.

Both run on im2col + one BLAS GEMM per group over the whole batch (see kernels/im2col.py),
split across two threads by kernels/blas.py.
Convolution with group 1 and several input channels uses the channels-last im2row instead,
whose copies are runs of C values (LeNet's conv2: ~4x faster than im2col on 12x12 images).
The column matrix of the forward pass is kept for the weight gradient in backward.
"""
import numpy as np

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.kernels import blas
from layerforge.kernels.conv import add_bias_grad, batch_to_rows, rows_to_batch
from layerforge.kernels.im2col import col2im, im2col, im2row, row2im
from layerforge.layer import Layer
from layerforge.registry import register_layer

_CHANNELS_LAST_MIN = 4  # input channels from which Convolution uses im2row


class _ConvolutionBase(Layer):
    """Parameter parsing, blobs and buffers shared by Convolution and Deconvolution.

    The "image side" of im2col is the bottom for Convolution and the top for
    Deconvolution; `self.conv_in` / `self.conv_out` are the channel counts of the
    equivalent forward convolution (Caffe's conv_in_channels_ / conv_out_channels_).
    """

    exact_num_bottom = 1
    exact_num_top = 1
    channels_last = False  # True: the column matrix is im2row's (N*P, K), not im2col's (K, N*P)

    def _pair(self, name, values, h_name, w_name, default):
        """Caffe's rule: `name` once or once per spatial axis, or name_h and name_w, not both."""
        cp = self.param.convolution_param
        has_h, has_w = cp.HasField(h_name), cp.HasField(w_name)
        if has_h or has_w:
            if values:
                raise self.error(f"convolution_param: give either {name} or {h_name}/{w_name}, not both")
            if not (has_h and has_w):
                raise self.error(f"convolution_param: {h_name} and {w_name} must be given together")
            return getattr(cp, h_name), getattr(cp, w_name)
        if len(values) == 0:
            if default is None:
                raise self.error(f"convolution_param: {name} (or {h_name} and {w_name}) is required")
            return default, default
        if len(values) == 1:
            return values[0], values[0]
        if len(values) == 2:
            return values[0], values[1]
        raise self.error(f"convolution_param: {name} is given {len(values)} times; give it once or "
                         f"once per spatial axis (2)")

    def setup(self, bottom, top):
        cp = self.param.convolution_param
        shape = bottom[0].shape
        try:
            self.axis = bottom[0].canonical_axis(cp.axis)
        except ValueError as err:
            raise self.error(f"convolution_param.axis: {err}") from None
        if len(shape) - self.axis - 1 != 2:
            raise self.error(f"only 2-D convolution is supported: bottom shape {shape} with axis "
                             f"{cp.axis} has {len(shape) - self.axis - 1} spatial axes, need 2")
        self.kernel = self._pair("kernel_size", cp.kernel_size, "kernel_h", "kernel_w", None)
        self.stride = self._pair("stride", cp.stride, "stride_h", "stride_w", 1)
        self.pad = self._pair("pad", cp.pad, "pad_h", "pad_w", 0)
        if len(cp.dilation) > 2:
            raise self.error(f"convolution_param: dilation is given {len(cp.dilation)} times; "
                             f"give it once or once per spatial axis (2)")
        self.dilation = tuple(cp.dilation) * (2 // len(cp.dilation)) if cp.dilation else (1, 1)
        for name, pair in (("kernel size", self.kernel), ("stride", self.stride),
                           ("dilation", self.dilation)):
            if min(pair) <= 0:
                raise self.error(f"convolution_param: {name} must be > 0, got {pair}")
        if cp.num_output <= 0:
            raise self.error("convolution_param.num_output must be given and > 0")
        self.group = cp.group
        self.channels = shape[self.axis]
        self.num_output = cp.num_output
        if self.group <= 0 or self.num_output % self.group:
            raise self.error(f"convolution_param: num_output {self.num_output} is not divisible "
                             f"by group {self.group}")
        if self.channels % self.group:
            raise self.error(f"the bottom's {self.channels} channels are not divisible by "
                             f"group {self.group}")
        self.conv_in, self.conv_out = self._conv_channels()
        weight = Blob((self.conv_out, self.conv_in // self.group) + self.kernel, bottom[0].dtype)
        fill(weight, cp.weight_filler, self.rng)
        self.blobs = [weight]
        if cp.bias_term:
            bias = Blob((self.num_output,), bottom[0].dtype)
            fill(bias, cp.bias_filler, self.rng)
            self.blobs.append(bias)

    def _geometry(self):
        return self.kernel + self.stride + self.pad + self.dilation

    def _buffer(self, name, shape, dtype):
        """A work array kept between calls; reallocated only when its shape or dtype changes."""
        array = getattr(self, name, None)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = np.empty(shape, dtype)
            setattr(self, name, array)
        return array

    def _image_view(self, array):
        """`array` as (N, C, H, W), folding all axes before the channel axis into N."""
        return array.reshape((-1,) + array.shape[self.axis:])

    def reshape(self, bottom, top):
        shape = bottom[0].shape
        if len(shape) != self.axis + 3 or shape[self.axis] != self.channels:
            raise self.error(f"bottom shape {shape} does not match the setup shape (channel axis "
                             f"{self.axis} with {self.channels} channels, 2 spatial axes)")
        self.num = int(np.prod(shape[:self.axis], dtype=np.int64))
        in_h, in_w = shape[self.axis + 1:]
        out_h, out_w = self._output_size(in_h, in_w)
        if out_h <= 0 or out_w <= 0:
            raise self.error(f"input {in_h}x{in_w} gives an empty output {out_h}x{out_w} with "
                             f"kernel {self.kernel}, stride {self.stride}, pad {self.pad}, "
                             f"dilation {self.dilation}")
        top[0].reshape(shape[:self.axis] + (self.num_output, out_h, out_w))
        # The column side is the smaller spatial size: the conv output, or the deconv input.
        col_h, col_w = (out_h, out_w) if self._image_is_bottom() else (in_h, in_w)
        self.col_plane = col_h * col_w
        dtype = bottom[0].dtype
        col_shape = (self.conv_in * self.kernel[0] * self.kernel[1], self.num * self.col_plane)
        col_shape = col_shape[::-1] if self.channels_last else col_shape
        self.col = self._buffer("col", col_shape, dtype)
        self.col_diff = self._buffer("col_diff", col_shape, dtype)
        self.rows = self._buffer("rows", (self.conv_out, self.num * self.col_plane), dtype)
        kernel_size = self.conv_in * self.kernel[0] * self.kernel[1]
        weight_grad = (self.conv_out // self.group, kernel_size // self.group)   # one group's
        self.weight_grad = self._buffer("weight_grad", weight_grad, dtype)
        self.partial = self._buffer("partial", blas.partial_shape(weight_grad), dtype)
        self.zero_bias = self._buffer("zero_bias", (self.conv_out,), dtype)
        self.zero_bias[...] = 0

    def _bias(self):
        """The bias added by rows_to_batch in Convolution.forward (zeros without bias_term)."""
        return self.blobs[1].data if len(self.blobs) > 1 else self.zero_bias

    def _grouped(self, weight, col, rows):
        """Per-group views (weight (M/g, K/g), col (K/g, N*P), rows (M/g, N*P))."""
        weight = weight.reshape(self.conv_out, -1)
        m, k = self.conv_out // self.group, col.shape[0] // self.group
        return [(weight[g * m:(g + 1) * m], col[g * k:(g + 1) * k], rows[g * m:(g + 1) * m])
                for g in range(self.group)]

    def _weight_grad(self, col, rows):
        """weight.diff += rows @ col.T, group by group."""
        weight = self.blobs[0]
        diff = weight.diff.reshape(self.conv_out, -1)
        m = self.conv_out // self.group
        for g, (_, col_g, rows_g) in enumerate(self._grouped(weight.data, col, rows)):
            blas.matmul_add(rows_g, col_g.T, diff[g * m:(g + 1) * m], self.partial)

    def _conv_rows(self, col, rows):
        """rows = weight @ col, group by group (the forward convolution GEMM)."""
        for weight_g, col_g, rows_g in self._grouped(self.blobs[0].data, col, rows):
            blas.matmul(weight_g, col_g, rows_g)

    def _conv_cols(self, rows, col):
        """col = weight.T @ rows, group by group (the data-gradient GEMM)."""
        for weight_g, col_g, rows_g in self._grouped(self.blobs[0].data, col, rows):
            blas.matmul(weight_g.T, rows_g, col_g)


@register_layer("Convolution")
class Convolution(_ConvolutionBase):
    """top = weight * bottom (+ bias); weight (num_output, C/group, kh, kw)."""

    def _conv_channels(self):
        self.channels_last = self.group == 1 and self.channels >= _CHANNELS_LAST_MIN
        return self.channels, self.num_output

    def _image_is_bottom(self):
        return True

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if self.channels_last:
            num, channels, height, width = self._image_view(bottom[0].data).shape
            dtype = bottom[0].dtype
            self.images_last = self._buffer("images_last", (num, height, width, channels), dtype)
            self.weight_last = self._buffer("weight_last", (self.num_output,) + self.kernel + (channels,), dtype)

    def _output_size(self, in_h, in_w):
        kh, kw, sh, sw, ph, pw, dh, dw = self._geometry()
        return ((in_h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1,
                (in_w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1)

    def forward(self, bottom, top):
        if self.channels_last:
            np.copyto(self.images_last, self._image_view(bottom[0].data).transpose(0, 2, 3, 1))
            im2row(self.images_last, *self._geometry(), self.col)
            np.copyto(self.weight_last, self.blobs[0].data.transpose(0, 2, 3, 1))
            blas.matmul(self.weight_last.reshape(self.num_output, -1), self.col.T, self.rows)
        else:
            im2col(self._image_view(bottom[0].data), *self._geometry(), self.col)
            self._conv_rows(self.col, self.rows)
        rows_to_batch(self.rows, self._bias(), top[0].data.reshape(self.num, self.num_output, -1))

    def backward(self, top, propagate_down, bottom):
        top_diff = top[0].diff.reshape(self.num, self.num_output, -1)
        if len(self.blobs) > 1:
            add_bias_grad(top_diff, self.blobs[1].diff)
        batch_to_rows(top_diff, self.rows)
        if not self.channels_last:
            self._weight_grad(self.col, self.rows)
            if propagate_down[0]:
                self._conv_cols(self.rows, self.col_diff)
                col2im(self.col_diff, *self._geometry(), self._image_view(bottom[0].diff))
            return
        weight_last = self.weight_last.reshape(self.num_output, -1)
        self.weight_grad[...] = 0
        blas.matmul_add(self.rows, self.col, self.weight_grad, self.partial)
        self.blobs[0].diff += self.weight_grad.reshape(self.weight_last.shape).transpose(0, 3, 1, 2)
        if propagate_down[0]:
            blas.matmul(self.rows.T, weight_last, self.col_diff)
            row2im(self.col_diff, *self._geometry(), self.images_last)
            np.copyto(self._image_view(bottom[0].diff), self.images_last.transpose(0, 3, 1, 2))


@register_layer("Deconvolution")
class Deconvolution(_ConvolutionBase):
    """Transposed convolution: the data gradient of a Convolution whose weight is
    (C, num_output/group, kh, kw), Caffe's Deconvolution layout."""

    def _conv_channels(self):
        return self.num_output, self.channels

    def _image_is_bottom(self):
        return False

    def _output_size(self, in_h, in_w):
        kh, kw, sh, sw, ph, pw, dh, dw = self._geometry()
        return (sh * (in_h - 1) + dh * (kh - 1) + 1 - 2 * ph,
                sw * (in_w - 1) + dw * (kw - 1) + 1 - 2 * pw)

    def forward(self, bottom, top):
        batch_to_rows(bottom[0].data.reshape(self.num, self.channels, -1), self.rows)
        self._conv_cols(self.rows, self.col)
        images = self._image_view(top[0].data)
        col2im(self.col, *self._geometry(), images)
        if len(self.blobs) > 1:
            images += self.blobs[1].data.reshape(-1, 1, 1)

    def backward(self, top, propagate_down, bottom):
        images_diff = self._image_view(top[0].diff)
        if len(self.blobs) > 1:
            add_bias_grad(images_diff.reshape(self.num, self.num_output, -1), self.blobs[1].diff)
        im2col(images_diff, *self._geometry(), self.col_diff)
        self._weight_grad(self.col_diff, self.rows)
        if propagate_down[0]:
            self._conv_rows(self.col_diff, self.rows)
            rows_to_batch(self.rows, self.zero_bias, bottom[0].diff.reshape(self.num, self.channels, -1))
