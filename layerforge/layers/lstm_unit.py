"""LSTMUnit: one LSTM cell step, Caffe's building block of the unrolled LSTM (kernels/recurrent.py)."""
import numpy as np

from layerforge.kernels.recurrent import lstm_unit_backward, lstm_unit_forward
from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("LSTMUnit")
class LSTMUnit(Layer):
    """Bottoms c_prev (1×N×H), gate inputs (1×N×4H, blocks i, f, o, g), cont (1×N);
    tops c and h (1×N×H): c = cont·σ(f)·c_prev + σ(i)·tanh(g), h = σ(o)·tanh(c).
    cont receives no gradient."""

    exact_num_bottom = 3
    exact_num_top = 2

    def reshape(self, bottom, top):
        c_prev, gates, cont = bottom
        num = c_prev.shape[1] if c_prev.num_axes == 3 else -1
        hidden = c_prev.shape[2] if c_prev.num_axes == 3 else -1
        if (c_prev.num_axes != 3 or c_prev.shape[0] != 1 or gates.shape != (1, num, 4 * hidden)
                or cont.shape != (1, num)):
            raise self.error(f"bottoms must be c_prev 1×N×H, gate inputs 1×N×4H and cont 1×N; got "
                             f"{c_prev.shape}, {gates.shape} and {cont.shape}")
        for blob in top:
            blob.reshape(c_prev.shape)
        self.acts = np.empty(gates.shape[1:], gates.dtype)

    def forward(self, bottom, top):
        lstm_unit_forward(bottom[0].data[0], bottom[1].data[0], bottom[2].data[0], top[0].data[0],
                          top[1].data[0], self.acts)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[2]:
            bottom[2].diff[...] = 0
        if not (propagate_down[0] or propagate_down[1]):
            return
        lstm_unit_backward(bottom[0].data[0], self.acts, bottom[2].data[0], top[0].data[0], top[0].diff[0],
                           top[1].diff[0], bottom[0].diff[0], bottom[1].diff[0])
