"""Deconvolution: the transpose of Convolution (its backward as forward), on the same im2col kernels."""
from layerforge.kernels.conv import add_bias_grad, batch_to_rows, rows_to_batch
from layerforge.kernels.im2col import col2im, im2col
from layerforge.layers.convolution import ConvolutionBase
from layerforge.registry import register_layer


@register_layer("Deconvolution")
class DeconvolutionLayer(ConvolutionBase):
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
