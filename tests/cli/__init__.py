"""Helpers for the CLI tests: a tiny learnable data layer and small net/solver prototxts."""
import numpy as np

from layerforge.layer import Layer

CENTRES = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.0]])


class Clusters(Layer):
    """Python data layer: tops (N×2 points, N labels) drawn around three class centres, so a
    one-layer classifier learns quickly. python_param.param_str is the batch size."""
    exact_num_bottom = 0
    exact_num_top = 2
    has_backward = False

    def setup(self, bottom, top):
        self.batch = int(self.param_str or 12)
        self.reshape(bottom, top)

    def reshape(self, bottom, top):
        top[0].reshape((self.batch, 2))
        top[1].reshape((self.batch,))

    def forward(self, bottom, top):
        labels = self.rng.integers(0, len(CENTRES), self.batch)
        top[0].data[...] = CENTRES[labels] + 0.3 * self.rng.standard_normal((self.batch, 2))
        top[1].data[...] = labels


NET = """
name: "clusters"
layer { name: "data" type: "Python" top: "data" top: "label"
        python_param { module: "tests.cli" layer: "Clusters" param_str: "12" } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        param { name: "ip1_w" } param { name: "ip1_b" }
        inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
        include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""

SOLVER = """
net: "{net}"
test_iter: 3
test_interval: 20
base_lr: 0.1
momentum: 0.9
lr_policy: "fixed"
display: 10
max_iter: 40
snapshot: 20
snapshot_prefix: "{prefix}"
random_seed: 1
"""


def write_net(folder, text=NET, name="net.prototxt"):
    path = folder / name
    path.write_text(text)
    return path


def write_solver(folder, **overrides):
    """A solver prototxt for NET in `folder`; snapshots go to folder/snap/clusters_*."""
    net = write_net(folder)
    text = SOLVER.replace("{net}", str(net)).replace("{prefix}", str(folder / "snap" / "clusters"))
    for key, value in overrides.items():
        text = "\n".join(line for line in text.splitlines() if not line.startswith(key + ":"))
        text += f"\n{key}: {value}\n"
    path = folder / "solver.prototxt"
    path.write_text(text)
    return path


def save_weights(folder, phase="TRAIN"):
    """Weights of a freshly initialised NET (enough for commands that need a .caffemodel)."""
    from layerforge.net import Net

    path = folder / "clusters.caffemodel"
    Net(write_net(folder), phase).save(path)
    return path
