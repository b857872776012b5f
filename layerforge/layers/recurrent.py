"""The recurrent-layer frame Caffe's RecurrentLayer gives RNN and LSTM (no layer type of its own).

Bottoms: x (T×N×...), cont (T×N; 0 starts a new sequence at that timestep: the previous
state is multiplied by cont), an optional static input x_static (N×...) seen at every
timestep, and with `recurrent_param.expose_hidden` the initial states (1×N×num_output
each); tops: the output (T×N×num_output) and with expose_hidden the final states.
Without expose_hidden the state at the end of one forward pass is the initial state of the
next (zeros at first, and again whenever N changes), as in Caffe; no gradient crosses from
one batch to the previous one. Caffe unrolls an internal net; here the recurrence runs
step by step over the timesteps, with the same parameter blobs in the same order and shapes
so Caffe's weights load. `debug_info` (logging of Caffe's internal net) has nothing to log.
"""
import numpy as np

from layerforge.blob import Blob
from layerforge.fillers import fill
from layerforge.layer import Layer


class Recurrent(Layer):
    """Shared bottom/top/parameter handling; subclasses name their states and blobs and
    implement `_forward_steps` and `_backward_steps`."""

    min_bottom = 2
    min_top = 1
    states = ("h",)        # recurrent states, in Caffe's order of the exposed bottoms/tops
    gate_blocks = 1        # rows of the input weights per output unit (LSTM: 4 gates)

    def _parameter_names(self):
        """(name, kind) of each blob in Caffe's order; kind: x, bias, static, hidden, output, output_bias."""
        raise NotImplementedError

    def setup(self, bottom, top):
        rp = self.param.recurrent_param
        if rp.num_output <= 0:
            raise self.error("recurrent_param.num_output must be given and > 0")
        self.num_output = rp.num_output
        self.expose_hidden = rp.expose_hidden
        exposed = len(self.states) if self.expose_hidden else 0
        static = len(bottom) - 2 - exposed
        if static not in (0, 1):
            wanted = "x, cont, [x_static]" + "".join(f", {s}_0" for s in self.states) * self.expose_hidden
            raise self.error(f"takes bottoms {wanted}; got {len(bottom)}")
        if len(top) != 1 + exposed:
            raise self.error(f"takes {1 + exposed} top(s) (the output"
                             + "".join(f", {s}_T" for s in self.states) * self.expose_hidden
                             + f"); got {len(top)}")
        self.static = bool(static)
        if bottom[0].num_axes < 3:
            raise self.error(f"bottom x must be T×N×... with at least 3 axes (Caffe's inner products "
                             f"start at axis 2), got shape {bottom[0].shape}")
        self.timesteps = bottom[0].shape[0]
        hidden, gates = self.num_output, self.gate_blocks * self.num_output
        shapes = {"x": (gates, bottom[0].count_range(2)), "bias": (gates,), "hidden": (gates, hidden),
                  "output": (hidden, hidden), "output_bias": (hidden,)}
        if self.static:
            shapes["static"] = (gates, bottom[2].count_range(1))
        dtype = bottom[0].dtype
        self.blobs = []
        for name, kind in self._parameter_names():
            if kind == "static" and not self.static:
                continue
            blob = Blob(shapes[kind], dtype)
            fill(blob, rp.bias_filler if kind.endswith("bias") else rp.weight_filler, self.rng)
            self.blobs.append(blob)
        self.state = None

    def reshape(self, bottom, top):
        x, cont = bottom[0], bottom[1]
        if x.num_axes < 3 or x.shape[0] != self.timesteps:
            raise self.error(f"bottom x must keep {self.timesteps} timesteps and 3 or more axes "
                             f"(Caffe fixes T at setup), got shape {x.shape}")
        timesteps, num = x.shape[:2]
        if cont.shape != (timesteps, num):
            raise self.error(f"bottom cont must be T×N = {timesteps}×{num} sequence markers, got shape {cont.shape}")
        if x.count_range(2) != self.blobs[0].shape[1]:
            raise self.error(f"bottom x has {x.count_range(2)} values per item; the setup shape had "
                             f"{self.blobs[0].shape[1]}")
        if self.static and (bottom[2].shape[0] != num or bottom[2].count_range(1) != self._static_weight().shape[1]):
            raise self.error(f"bottom x_static must be N×... with N = {num} and "
                             f"{self._static_weight().shape[1]} values per item, got shape {bottom[2].shape}")
        state_shape = (1, num, self.num_output)
        if self.expose_hidden:
            for name, blob in zip(self.states, bottom[2 + self.static:]):
                if blob.shape != state_shape:
                    raise self.error(f"bottom {name}_0 must have shape {state_shape}, got {blob.shape}")
            for blob in top[1:]:
                blob.reshape(state_shape)
        elif self.state is None or self.state[0].shape != (num, self.num_output):
            self.state = [np.zeros((num, self.num_output), x.dtype) for _ in self.states]
        top[0].reshape((timesteps, num, self.num_output))

    def _static_weight(self):
        return self.blobs[self._blob_index("static")]

    def _blob_index(self, kind):
        kinds = [k for _, k in self._parameter_names() if k != "static" or self.static]
        return kinds.index(kind)

    def _inputs(self, bottom):
        """x as (T, N, D), the static contribution (N, gates) or None, and the initial states (N, H)."""
        timesteps, num = bottom[0].shape[:2]
        x = bottom[0].data.reshape(timesteps, num, -1)
        static = None
        if self.static:
            static = bottom[2].data.reshape(num, -1) @ self._static_weight().data.T
        if self.expose_hidden:
            initial = [blob.data.reshape(num, -1) for blob in bottom[2 + self.static:]]
        else:
            initial = self.state
        return x, static, initial

    def forward(self, bottom, top):
        x, static, initial = self._inputs(bottom)
        weight, bias = self.blobs[self._blob_index("x")].data, self.blobs[self._blob_index("bias")].data
        gates = x @ weight.T + bias             # (T, N, gates): the input's share of every step
        if static is not None:
            gates += static
        final = self._forward_steps(gates, bottom[1].data, initial, top[0].data)
        if self.expose_hidden:
            for blob, value in zip(top[1:], final):
                blob.data[...] = value.reshape(blob.shape)
        else:
            self.state = [value.copy() for value in final]

    def backward(self, top, propagate_down, bottom):
        num = bottom[0].shape[1]
        final_diffs = [blob.diff.reshape(num, -1) for blob in top[1:]] if self.expose_hidden else None
        gates_diff, initial_diffs = self._backward_steps(top[0].data, top[0].diff, bottom[1].data, final_diffs)
        weight = self.blobs[self._blob_index("x")]
        flat_diff = gates_diff.reshape(-1, gates_diff.shape[-1])
        weight.diff += flat_diff.T @ bottom[0].data.reshape(len(flat_diff), -1)
        self.blobs[self._blob_index("bias")].diff += flat_diff.sum(axis=0)
        if propagate_down[0]:
            bottom[0].diff[...] = (flat_diff @ weight.data).reshape(bottom[0].shape)
        if propagate_down[1]:
            bottom[1].diff[...] = 0    # sequence markers get no gradient
        if self.static:
            static_diff = gates_diff.sum(axis=0)                       # (N, gates): every step saw it
            static_weight = self._static_weight()
            static_weight.diff += static_diff.T @ bottom[2].data.reshape(num, -1)
            if propagate_down[2]:
                bottom[2].diff[...] = (static_diff @ static_weight.data).reshape(bottom[2].shape)
        if self.expose_hidden:
            for i, diff in enumerate(initial_diffs, start=2 + self.static):
                if propagate_down[i]:
                    bottom[i].diff[...] = diff.reshape(bottom[i].shape)

    def _forward_steps(self, gates, cont, initial, output):
        """Run the recurrence; write the output (T, N, H); return the final states."""
        raise NotImplementedError

    def _backward_steps(self, output, output_diff, cont, final_diffs):
        """Gradients of the step inputs (T, N, gates) and of the initial states; adds the
        recurrent parameters' gradients. `final_diffs`: gradients at the final states, or None."""
        raise NotImplementedError
