"""BatchNorm: normalize each channel to zero mean and unit variance, as Caffe's BatchNormLayer."""
import numpy as np

from layerforge.blob import Blob
from layerforge.kernels.batch_norm import batch_norm_backward, batch_norm_train_forward
from layerforge.kernels.channels import channel_affine
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


@register_layer("BatchNorm")
class BatchNormLayer(Layer):
    """y = (x - mean) / sqrt(variance + eps) per channel (axis 1; a 1-D bottom is one channel).

    Three non-learnable blobs, Caffe's: the running sum of means, of variances, and the scale
    factor s. Each TRAIN forward (unless use_global_stats) normalizes with the batch statistics
    and updates s = f·s + 1, mean_sum = f·mean_sum + mean, var_sum = f·var_sum + m/(m-1)·var
    (f = moving_average_fraction, m = values per channel; the unbiased correction). With
    use_global_stats (the default outside TRAIN) it normalizes with mean_sum / s and var_sum / s.
    The solver never updates the blobs; a `param` giving them a non-zero lr_mult is an error,
    as in Caffe. There is no scale or shift: follow with a Scale layer (bias_term: true).
    """

    exact_num_bottom = 1
    exact_num_top = 1
    allow_in_place = True

    def setup(self, bottom, top):
        param = self.param.batch_norm_param
        self.use_global_stats = (param.use_global_stats if param.HasField("use_global_stats")
                                 else self.phase != pb.TRAIN)
        self.fraction = param.moving_average_fraction
        self.eps = param.eps
        for i, spec in enumerate(self.param.param):
            if spec.lr_mult != 0:
                raise self.error(f"param {i} has lr_mult {spec.lr_mult:g}: the mean, variance and scale "
                                 f"factor are statistics, not parameters; give lr_mult: 0 or no param")
        self.channels = 1 if bottom[0].num_axes == 1 else bottom[0].shape[1]
        dtype = bottom[0].dtype
        self.blobs = [Blob((self.channels,), dtype, learnable=False),
                      Blob((self.channels,), dtype, learnable=False),
                      Blob((1,), dtype, learnable=False)]

    def reshape(self, bottom, top):
        channels = 1 if bottom[0].num_axes == 1 else bottom[0].shape[1]
        if bottom[0].num_axes == 0 or channels != self.channels:
            raise self.error(f"bottom shape {bottom[0].shape} does not have the {self.channels} channels "
                             f"(axis 1) the layer was set up with")
        top[0].reshape_like(bottom[0])
        num = bottom[0].shape[0]
        self.view = (num, self.channels, bottom[0].count // max(num * self.channels, 1))
        if not self.use_global_stats:   # the normalized values for backward: later in-place layers may overwrite the top
            self.buffer("x_norm", self.view, bottom[0].dtype)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.view)
        y = top[0].data.reshape(self.view)
        if self.use_global_stats:
            factor = self.blobs[2].data[0]
            scale = 0.0 if factor == 0 else 1.0 / factor
            mean = self.blobs[0].data.astype(np.float64) * scale
            variance = self.blobs[1].data.astype(np.float64) * scale
            self.std = np.sqrt(variance + self.eps)
            channel_affine(x, 1.0 / self.std, -mean / self.std, y)
        else:
            mean, variance, self.std = (np.empty(self.channels) for _ in range(3))
            batch_norm_train_forward(x, self.eps, mean, variance, self.std, self.x_norm, y)
            self._update_moving_averages(mean, variance, bottom[0].count // self.channels)

    def _update_moving_averages(self, mean, variance, m):
        mean_sum, variance_sum, factor = (blob.data for blob in self.blobs)
        factor *= self.fraction
        factor += 1
        mean_sum *= self.fraction
        mean_sum += mean
        variance_sum *= self.fraction
        variance_sum += variance * (m / (m - 1) if m > 1 else 1.0)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.view)
        dx = bottom[0].diff.reshape(self.view)
        if self.use_global_stats:
            channel_affine(dy, 1.0 / self.std, np.zeros(self.channels), dx)
        else:
            batch_norm_backward(self.x_norm, dy, self.std, dx)
