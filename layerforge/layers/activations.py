"""Elementwise activation layers: ReLU, PReLU, ELU, Sigmoid, TanH, Power, AbsVal, Dropout,
Exp, Log, Threshold, Clip and Swish.

All take one bottom and give one top of the same shape, and may run in place (top is
the bottom Blob). Layers whose backward needs the forward input keep a copy of it when
running in place, as Caffe's PReLU does.
"""
import numpy as np

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.kernels import activations as kernels
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


def _flat(array):
    return array.reshape(-1)


class NeuronLayer(Layer):
    """Caffe's NeuronLayer: one bottom, one top of the same shape, item-wise; in place allowed."""
    exact_num_bottom = 1
    exact_num_top = 1
    allow_in_place = True
    batch_independent = True

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def _keep_input(self, bottom, top):
        """Remember the forward input for backward; copy it if the forward will overwrite it."""
        self._input = bottom[0].data.copy() if top[0] is bottom[0] else bottom[0].data

    def _reject_in_place(self, bottom, top, field, value):
        if top[0] is bottom[0]:
            raise self.error(f"{field} = {value} cannot run in place (the backward could not tell "
                             f"the sign of the input from the output); give the top its own name")


@register_layer("ReLU")
class ReLULayer(NeuronLayer):
    """y = max(x, 0) + negative_slope * min(x, 0); backward reads the top when in place, as Caffe."""

    def setup(self, bottom, top):
        self.negative_slope = self.param.relu_param.negative_slope
        if self.negative_slope < 0:
            self._reject_in_place(bottom, top, "relu_param.negative_slope", self.negative_slope)

    def forward(self, bottom, top):
        kernels.relu_forward(_flat(bottom[0].data), self.negative_slope, _flat(top[0].data))

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            kernels.relu_backward(_flat(bottom[0].data), _flat(top[0].diff), self.negative_slope,
                                  _flat(bottom[0].diff))


@register_layer("ELU")
class ELULayer(NeuronLayer):
    """y = x for x > 0, else alpha * (exp(x) - 1)."""

    def setup(self, bottom, top):
        self.alpha = self.param.elu_param.alpha
        if self.alpha < 0:
            self._reject_in_place(bottom, top, "elu_param.alpha", self.alpha)

    def forward(self, bottom, top):
        kernels.elu_forward(_flat(bottom[0].data), self.alpha, _flat(top[0].data))

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            kernels.elu_backward(_flat(bottom[0].data), _flat(top[0].data), _flat(top[0].diff), self.alpha,
                                 _flat(bottom[0].diff))


@register_layer("Sigmoid")
class SigmoidLayer(NeuronLayer):
    """y = 1 / (1 + exp(-x)), computed as 0.5 * tanh(x / 2) + 0.5 (no overflow, SIMD in numpy)."""

    def forward(self, bottom, top):
        y = top[0].data
        np.multiply(bottom[0].data, 0.5, out=y)
        np.tanh(y, out=y)
        y *= 0.5
        y += 0.5

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            kernels.sigmoid_backward(_flat(top[0].data), _flat(top[0].diff), _flat(bottom[0].diff))


@register_layer("TanH")
class TanHLayer(NeuronLayer):
    """y = tanh(x); the backward needs only the top."""

    def forward(self, bottom, top):
        np.tanh(bottom[0].data, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            kernels.tanh_backward(_flat(top[0].data), _flat(top[0].diff), _flat(bottom[0].diff))


@register_layer("PReLU")
class PReLULayer(NeuronLayer):
    """ReLU with a learnable negative slope per channel (axis 1), or one shared slope."""

    def setup(self, bottom, top):
        param = self.param.prelu_param
        self._check_axes(bottom)
        self.channel_shared = param.channel_shared
        shape = () if self.channel_shared else (bottom[0].shape[1],)  # Caffe's blob shapes
        slope = Blob(shape, bottom[0].dtype)
        if param.HasField("filler"):
            fill(slope, param.filler, self.rng)
        else:
            slope.data[...] = 0.25
        self.blobs = [slope]

    def _check_axes(self, bottom):
        if bottom[0].num_axes < 2:
            raise self.error(f"needs a bottom with at least 2 axes (N, C, ...), got shape {bottom[0].shape}")

    def reshape(self, bottom, top):
        self._check_axes(bottom)
        if not self.channel_shared and self.blobs[0].count != bottom[0].shape[1]:
            raise self.error(f"bottom has {bottom[0].shape[1]} channels (shape {bottom[0].shape}) but the "
                             f"slope has shape {self.blobs[0].shape}")
        super().reshape(bottom, top)

    def _slopes(self, channels):
        """The slope per channel: a view of the parameter (read-only broadcast when shared)."""
        return np.broadcast_to(self.blobs[0].data.reshape(-1), (channels,))

    def _channels(self, array):
        return array.reshape(array.shape[0], array.shape[1], -1)

    def forward(self, bottom, top):
        self._keep_input(bottom, top)
        channels = bottom[0].shape[1]
        kernels.prelu_forward(self._channels(bottom[0].data), self._slopes(channels), self._channels(top[0].data))

    def backward(self, top, propagate_down, bottom):
        channels = bottom[0].shape[1]
        dy = self._channels(top[0].diff)
        dx = self._channels(bottom[0].diff) if propagate_down[0] else dy
        slope_diff = np.zeros(channels, np.float64)
        kernels.prelu_backward(self._channels(self._input), dy, self._slopes(channels), dx, slope_diff,
                               bool(propagate_down[0]))
        diff = self.blobs[0].diff
        diff += slope_diff.sum() if self.channel_shared else slope_diff.astype(diff.dtype)


@register_layer("Power")
class PowerLayer(NeuronLayer):
    """y = (shift + scale * x) ^ power."""

    def setup(self, bottom, top):
        param = self.param.power_param
        self.power, self.scale, self.shift = param.power, param.scale, param.shift

    def forward(self, bottom, top):
        self._keep_input(bottom, top)
        y = top[0].data
        np.multiply(bottom[0].data, self.scale, out=y)
        y += self.shift
        if self.power != 1:
            np.power(y, self.power, out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dx = bottom[0].diff
        if self.power == 1 or self.scale == 0 or self.power == 0:
            np.multiply(top[0].diff, self.power * self.scale, out=dx)
            return
        base = self.shift + self.scale * self._input
        dx[...] = top[0].diff * (self.power * self.scale) * base ** (self.power - 1)


@register_layer("AbsVal")
class AbsValLayer(NeuronLayer):
    """y = |x|; the gradient is sign(x) * dy."""

    def forward(self, bottom, top):
        self._keep_input(bottom, top)
        np.abs(bottom[0].data, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            np.multiply(top[0].diff, np.sign(self._input), out=bottom[0].diff)


@register_layer("Dropout")
class DropoutLayer(NeuronLayer):
    """TRAIN: zero each value with probability dropout_ratio and scale the rest by 1 / (1 - ratio).

    TEST and RUN: identity. The mask is drawn from self.rng, so a seeded net drops the same values.
    """

    batch_independent = False   # the mask of one item depends on the items drawn before it

    def setup(self, bottom, top):
        self.ratio = self.param.dropout_param.dropout_ratio
        if not 0 <= self.ratio < 1:
            raise self.error(f"dropout_param.dropout_ratio must be in [0, 1), got {self.ratio}")

    def forward(self, bottom, top):
        x, y = bottom[0].data, top[0].data
        if self.phase != pb.TRAIN:
            if y is not x:
                y[...] = x
            return
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.ratio
        self._mask = keep * x.dtype.type(1.0 / (1.0 - self.ratio))
        np.multiply(x, self._mask, out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy, dx = top[0].diff, bottom[0].diff
        if self.phase == pb.TRAIN:
            np.multiply(dy, self._mask, out=dx)
        elif dx is not dy:
            dx[...] = dy


def _log_base(layer, field, base):
    """ln(base) for Exp and Log; base -1 (the default) means e."""
    if base == -1:
        return 1.0
    if base <= 0:
        raise layer.error(f"{field}.base must be positive or -1 (for e), got {base}")
    return float(np.log(base))


@register_layer("Exp")
class ExpLayer(NeuronLayer):
    """y = base ^ (shift + scale * x); the gradient y * ln(base) * scale needs only the top."""

    def setup(self, bottom, top):
        param = self.param.exp_param
        log_base = _log_base(self, "exp_param", param.base)
        self.inner_scale = log_base * param.scale
        self.outer_scale = float(np.exp(log_base * param.shift))

    def forward(self, bottom, top):
        y = top[0].data
        np.multiply(bottom[0].data, self.inner_scale, out=y)
        np.exp(y, out=y)
        y *= self.outer_scale

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            np.multiply(top[0].diff, top[0].data * self.inner_scale, out=bottom[0].diff)


@register_layer("Log")
class LogLayer(NeuronLayer):
    """y = log_base(shift + scale * x)."""

    def setup(self, bottom, top):
        param = self.param.log_param
        self.base_scale = 1.0 / _log_base(self, "log_param", param.base)
        self.scale, self.shift = param.scale, param.shift

    def forward(self, bottom, top):
        self._keep_input(bottom, top)
        y = top[0].data
        np.multiply(bottom[0].data, self.scale, out=y)
        y += self.shift
        np.log(y, out=y)
        y *= self.base_scale

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            denominator = self.shift + self.scale * self._input
            np.multiply(top[0].diff, self.scale * self.base_scale / denominator, out=bottom[0].diff)


@register_layer("Threshold")
class ThresholdLayer(NeuronLayer):
    """y = 1 where x > threshold, else 0. Not differentiable: no backward, as in Caffe."""
    has_backward = False

    def forward(self, bottom, top):
        np.greater(bottom[0].data, self.param.threshold_param.threshold, out=top[0].data)


@register_layer("Clip")
class ClipLayer(NeuronLayer):
    """y = min(max(x, min), max); the gradient passes where min <= x <= max."""

    def setup(self, bottom, top):
        param = self.param.clip_param
        if not (param.HasField("min") and param.HasField("max")) or param.min > param.max:
            raise self.error(f"clip_param needs min <= max, got min {param.min} and max {param.max}")
        self.low, self.high = param.min, param.max

    def forward(self, bottom, top):
        self._keep_input(bottom, top)
        np.clip(bottom[0].data, self.low, self.high, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            inside = (self._input >= self.low) & (self._input <= self.high)
            np.multiply(top[0].diff, inside, out=bottom[0].diff)


@register_layer("Swish")
class SwishLayer(NeuronLayer):
    """y = x * sigmoid(beta * x); the sigmoid is kept for the backward."""

    def setup(self, bottom, top):
        self.beta = self.param.swish_param.beta

    def forward(self, bottom, top):
        x = bottom[0].data
        sig = np.multiply(x, 0.5 * self.beta)
        np.tanh(sig, out=sig)
        sig *= 0.5
        sig += 0.5
        self._sigmoid = sig
        np.multiply(x, sig, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            beta_y = self.beta * top[0].data
            slope = beta_y + self._sigmoid * (1 - beta_y)
            np.multiply(top[0].diff, slope, out=bottom[0].diff)
