"""Test-local layers and net/solver text builders for the solver tests.

SolverTestSeq is a deterministic data source (item k is a fixed function of k) with
get_state/set_state like the real Data layer, so a numpy reference can replay the batches.
"""
import numpy as np

from layerforge.io import parse_text
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


def seq_items(start, count, dim, phase=0.0):
    """Items start..start+count-1 of the sequence: row k is sin(0.7·k + 0.3·j + phase)."""
    k = np.arange(start, start + count, dtype=np.float64)[:, None]
    return np.sin(0.7 * k + 0.3 * np.arange(dim) + phase)


@register_layer("SolverTestSeq")
class SeqLayer(Layer):
    """Tops data (N×D) and target (N×M) from seq_items; dummy_data_param.shape gives both
    shapes, python_param.param_str an optional phase (so two instances differ)."""
    exact_num_bottom = 0
    exact_num_top = 2
    has_backward = False

    def setup(self, bottom, top):
        self.cursor = 0
        for blob, shape in zip(top, self.param.dummy_data_param.shape):
            blob.reshape(shape.dim)

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        n, phase = top[0].shape[0], float(self.param_str or 0)
        top[0].data[...] = seq_items(self.cursor, n, top[0].shape[1], phase)
        top[1].data[...] = 0.5 * seq_items(self.cursor, n, top[1].shape[1], phase + 1.0)
        self.cursor += n

    def get_state(self):
        return {"cursor": self.cursor}

    def set_state(self, state):
        self.cursor = state["cursor"]


@register_layer("SolverTestBlowUp")
class BlowUpLayer(Layer):
    """Identity whose top turns NaN on forward call number int(param_str) (0-based);
    with param_str "grad:N" the top stays finite and the bottom gradient turns Inf instead."""
    exact_num_bottom = 1
    exact_num_top = 1

    def setup(self, bottom, top):
        self.calls = 0
        self.in_gradient = self.param_str.startswith("grad:")
        self.at = int(self.param_str.split(":")[-1])

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data
        if self.calls == self.at and not self.in_gradient:
            top[0].data[0] = np.nan
        self.calls += 1

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = top[0].diff
        if self.calls - 1 == self.at and self.in_gradient:
            bottom[0].diff[0] = np.inf


@register_layer("SolverTestScript")
class ScriptLayer(Layer):
    """Scalar top that outputs the comma-separated values of param_str, one per forward."""
    exact_num_bottom = 0
    exact_num_top = 1
    has_backward = False

    def setup(self, bottom, top):
        self.values = [float(v) for v in self.param_str.split(",")]
        self.calls = 0
        top[0].reshape(())

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        top[0].data[...] = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1


def linear_net(batch=4, dim=3, out=2, tied=False, extra="", bias_lr=2, bias_decay=0):
    """data -> InnerProduct -> EuclideanLoss (tied: two InnerProducts sharing w and b on two inputs)."""
    params = (f'param {{ name: "w" lr_mult: 1 decay_mult: 1 }} '
              f'param {{ name: "b" lr_mult: {bias_lr} decay_mult: {bias_decay} }}')
    ip = (f'inner_product_param {{ num_output: {out} weight_filler {{ type: "gaussian" std: 0.5 }} '
          f'bias_filler {{ type: "constant" value: 0.1 }} }}')
    text = (f'name: "linear" layer {{ name: "seq" type: "SolverTestSeq" top: "data" top: "target" '
            f'dummy_data_param {{ shape {{ dim: {batch} dim: {dim} }} shape {{ dim: {batch} dim: {out} }} }} }}\n'
            f'layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "y" {params} {ip} }}\n')
    if tied:
        text += (f'layer {{ name: "seq2" type: "SolverTestSeq" top: "data2" top: "target2" '
                 f'python_param {{ param_str: "2" }} '
                 f'dummy_data_param {{ shape {{ dim: {batch} dim: {dim} }} shape {{ dim: {batch} dim: {out} }} }} }}\n'
                 f'layer {{ name: "ip2" type: "InnerProduct" bottom: "data2" top: "y2" {params} {ip} }}\n'
                 f'layer {{ name: "loss2" type: "EuclideanLoss" bottom: "y2" bottom: "target2" top: "loss2" }}\n')
    text += 'layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "target" top: "loss" }\n'
    return text + extra


def solver_param(net_text, text):
    """SolverParameter from solver fields `text` with `net_text` inline as net_param."""
    return parse_text(f"net_param {{ {net_text} }}\n{text}", pb.SolverParameter())
