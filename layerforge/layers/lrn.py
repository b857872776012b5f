"""LRN: local response normalization (AlexNet), Caffe's ACROSS_CHANNELS and WITHIN_CHANNEL."""

from layerforge.kernels import lrn as kernels
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


@register_layer("LRN")
class LRNLayer(Layer):
    """y = x · scale^-beta on a 4-D bottom (N, C, H, W).

    ACROSS_CHANNELS: scale = k + alpha/local_size · Σ x² over the local_size channels centred on
    each one (clipped at the ends). WITHIN_CHANNEL: scale = 1 + alpha/local_size² · Σ x² over the
    local_size × local_size window centred on each pixel (clipped at the borders); as in Caffe,
    this region ignores k. local_size must be odd.
    """

    exact_num_bottom = 1
    exact_num_top = 1
    batch_independent = True

    def setup(self, bottom, top):
        param = self.param.lrn_param
        if param.local_size % 2 != 1:
            raise self.error(f"lrn_param.local_size must be odd, got {param.local_size}")
        self.size, self.alpha, self.beta, self.k = param.local_size, param.alpha, param.beta, param.k
        self.across = param.norm_region == pb.LRNParameter.ACROSS_CHANNELS

    def reshape(self, bottom, top):
        if bottom[0].num_axes != 4:
            raise self.error(f"needs a 4-D bottom (N, C, H, W), got shape {bottom[0].shape}")
        top[0].reshape_like(bottom[0])
        self.buffer("scale", bottom[0].shape, bottom[0].dtype)   # per element, kept from forward for backward
        n, c, h, w = bottom[0].shape
        self.view = (n, c, h * w) if self.across else (n * c, h, w)

    def forward(self, bottom, top):
        x, y, scale = (a.reshape(self.view) for a in (bottom[0].data, top[0].data, self.scale))
        if self.across:
            kernels.lrn_across_channels_forward(x, self.size, self.alpha, self.beta, self.k, scale, y)
        else:
            kernels.lrn_within_channel_forward(x, self.size, self.alpha, self.beta, scale, y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        arrays = (bottom[0].data, top[0].data, self.scale, top[0].diff)
        x, y, scale, dy = (a.reshape(self.view) for a in arrays)
        dx = bottom[0].diff.reshape(self.view)
        backward = (kernels.lrn_across_channels_backward if self.across
                    else kernels.lrn_within_channel_backward)
        backward(x, y, scale, dy, self.size, self.alpha, self.beta, dx)
