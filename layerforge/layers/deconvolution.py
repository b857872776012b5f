"""Deconvolution: the transpose of Convolution (its backward as forward), on the same im2col kernels."""
from layerforge.kernels.conv import add_bias_grad, batch_to_rows, rows_to_batch
from layerforge.kernels.im2col import col2im, col2im_nd, im2col, im2col_nd
from layerforge.layers.convolution import ConvolutionBase
from layerforge.registry import register_layer


@register_layer("Deconvolution")
class DeconvolutionLayer(ConvolutionBase):
    """Transposed convolution: the data gradient of a Convolution whose weight is
    (C, num_output/group, *kernel), Caffe's Deconvolution layout."""

    def _conv_channels(self):
        return self.num_output, self.channels

    def _image_is_bottom(self):
        return False

    @staticmethod
    def _axis_output_size(size, kernel, stride, pad, dilation):
        return stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad

    def _prepare(self, bottom):
        """The rows that forward derives from one bottom and backward reuses."""
        batch_to_rows(bottom.data.reshape(self.num, self.channels, -1), self.rows)

    def _forward(self, bottom, top):
        """One bottom/top pair (Blobs)."""
        self._prepare(bottom)
        self._conv_cols(self.rows, self.col)
        if self.nd:
            col2im_nd(self.col, self.image_shape, *self.nd_geometry, self._flat_view(top.data))
        else:
            col2im(self.col, *self._geometry(), self._image_view(top.data))
        if len(self.blobs) > 1:
            self._flat_view(top.data)[...] += self.blobs[1].data.reshape(-1, 1)

    def _backward(self, top, propagate_down, bottom):
        """One bottom/top pair (Blobs), after `_prepare(bottom)`."""
        images_diff = self._flat_view(top.diff)
        if len(self.blobs) > 1 and self.param_needs_gradient(1):
            add_bias_grad(images_diff, self.blobs[1].diff)
        if self.nd:
            im2col_nd(images_diff, self.image_shape, *self.nd_geometry, self.col_diff)
        else:
            im2col(self._image_view(top.diff), *self._geometry(), self.col_diff)
        if self.param_needs_gradient(0):
            self._weight_grad(self.col_diff, self.rows)
        if propagate_down:
            self._conv_rows(self.col_diff, self.rows)
            rows_to_batch(self.rows, self.zero_bias, bottom.diff.reshape(self.num, self.channels, -1))
