"""RNN: Caffe's simple recurrent layer (see layers/recurrent.py for bottoms, tops and state)."""
import numpy as np

from layerforge.layers.recurrent import Recurrent
from layerforge.registry import register_layer


@register_layer("RNN")
class RNN(Recurrent):
    """h_t = tanh(W_hh · (cont_t · h_{t-1}) + W_xh · x_t + b_h [+ W_xh_static · x_static]),
    o_t = tanh(W_ho · h_t + b_o); top o (T×N×num_output). Blobs in Caffe's order:
    W_xh, b_h, [W_xh_static], W_hh, W_ho, b_o."""

    states = ("h",)
    gate_blocks = 1

    def _parameter_names(self):
        return (("W_xh", "x"), ("b_h", "bias"), ("W_xh_static", "static"), ("W_hh", "hidden"),
                ("W_ho", "output"), ("b_o", "output_bias"))

    def _forward_steps(self, gates, cont, initial, output):
        timesteps, num, hidden = output.shape
        w_hh = self.blobs[self._blob_index("hidden")].data
        self.h = np.empty((timesteps + 1, num, hidden), output.dtype)
        self.h_conted = np.empty((timesteps, num, hidden), output.dtype)
        self.h[0] = initial[0]
        for t in range(timesteps):
            np.multiply(self.h[t], cont[t][:, None], out=self.h_conted[t])
            np.tanh(gates[t] + self.h_conted[t] @ w_hh.T, out=self.h[t + 1])
        w_ho, b_o = self.blobs[self._blob_index("output")], self.blobs[self._blob_index("output_bias")]
        np.tanh(self.h[1:] @ w_ho.data.T + b_o.data, out=output)
        return [self.h[timesteps]]

    def _backward_steps(self, output, output_diff, cont, final_diffs):
        timesteps, num, hidden = output.shape
        w_hh = self.blobs[self._blob_index("hidden")]
        w_ho, b_o = self.blobs[self._blob_index("output")], self.blobs[self._blob_index("output_bias")]
        output_input_diff = (output_diff * (1 - output * output)).reshape(-1, hidden)
        w_ho.diff += output_input_diff.T @ self.h[1:].reshape(-1, hidden)
        b_o.diff += output_input_diff.sum(axis=0)
        h_diff = (output_input_diff @ w_ho.data).reshape(timesteps, num, hidden)
        if final_diffs is not None:
            h_diff[-1] += final_diffs[0]
        gates_diff = np.empty_like(h_diff)
        for t in range(timesteps - 1, -1, -1):
            np.multiply(h_diff[t], 1 - self.h[t + 1] * self.h[t + 1], out=gates_diff[t])
            previous_diff = (gates_diff[t] @ w_hh.data) * cont[t][:, None]
            if t > 0:
                h_diff[t - 1] += previous_diff
        w_hh.diff += gates_diff.reshape(-1, hidden).T @ self.h_conted.reshape(-1, hidden)
        return gates_diff, [previous_diff]
