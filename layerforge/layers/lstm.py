"""LSTM: Caffe's long short-term memory layer (see layers/recurrent.py for bottoms, tops and
state; kernels/recurrent.py for the cell step, Caffe's LSTMUnit)."""
import numpy as np

from layerforge.kernels.recurrent import lstm_unit_backward, lstm_unit_forward
from layerforge.layers.recurrent import Recurrent
from layerforge.registry import register_layer


@register_layer("LSTM")
class LSTM(Recurrent):
    """gates_t = W_hc · (cont_t · h_{t-1}) + W_xc · x_t + b_c [+ W_xc_static · x_static], in
    blocks i, f, o, g of num_output rows; c_t = cont_t · σ(f) · c_{t-1} + σ(i) · tanh(g),
    h_t = σ(o) · tanh(c_t); top h (T×N×num_output). Blobs in Caffe's order: W_xc, b_c,
    [W_xc_static], W_hc. Exposed states: h then c."""

    states = ("h", "c")
    gate_blocks = 4

    def _parameter_names(self):
        return (("W_xc", "x"), ("b_c", "bias"), ("W_xc_static", "static"), ("W_hc", "hidden"))

    def _forward_steps(self, gates, cont, initial, output):
        timesteps, num, hidden = output.shape
        w_hc = self.blobs[self._blob_index("hidden")].data
        self.c = np.empty((timesteps + 1, num, hidden), output.dtype)
        self.h_conted = np.empty((timesteps, num, hidden), output.dtype)
        self.acts = np.empty((timesteps, num, 4 * hidden), output.dtype)
        self.c[0] = initial[1]
        h_previous = initial[0]
        for t in range(timesteps):
            np.multiply(h_previous, cont[t][:, None], out=self.h_conted[t])
            step = gates[t] + self.h_conted[t] @ w_hc.T
            lstm_unit_forward(self.c[t], step, cont[t], self.c[t + 1], output[t], self.acts[t])
            h_previous = output[t]
        return [output[-1], self.c[timesteps]]

    def _backward_steps(self, output, output_diff, cont, final_diffs):
        timesteps, num, hidden = output.shape
        w_hc = self.blobs[self._blob_index("hidden")]
        h_diff = output_diff.copy()
        c_diff = np.zeros((num, hidden), output.dtype)
        if final_diffs is not None:
            h_diff[-1] += final_diffs[0]
            c_diff[...] = final_diffs[1]
        c_previous_diff = np.empty_like(c_diff)
        gates_diff = np.empty((timesteps, num, 4 * hidden), output.dtype)
        for t in range(timesteps - 1, -1, -1):
            lstm_unit_backward(self.c[t], self.acts[t], cont[t], self.c[t + 1], c_diff, h_diff[t],
                               c_previous_diff, gates_diff[t])
            previous_diff = (gates_diff[t] @ w_hc.data) * cont[t][:, None]
            if t > 0:
                h_diff[t - 1] += previous_diff
            c_diff, c_previous_diff = c_previous_diff, c_diff
        w_hc.diff += gates_diff.reshape(-1, 4 * hidden).T @ self.h_conted.reshape(-1, hidden)
        return gates_diff, [previous_diff, c_diff]
