"""LeNet (conv 20@5 -> pool -> conv 50@5 -> pool -> ip 500 -> ReLU -> ip 10 -> SoftmaxWithLoss)
runs forward and backward on random data, and plain SGD updates lower its loss."""
import pathlib

import numpy as np

from layerforge import Net, TRAIN
from layerforge.io import parse_text, read_net
from layerforge.proto import layerforge_pb2 as pb

ROOT = pathlib.Path(__file__).resolve().parents[1]


def lenet_on_inputs(batch):
    """prototxt/lenet_train_test.prototxt with its Data layers replaced by an Input layer."""
    param = read_net(ROOT / "prototxt" / "lenet_train_test.prototxt")
    layers = [l for l in param.layer if l.type not in ("Data", "Accuracy")]
    del param.layer[:]
    param.layer.append(parse_text(f'name: "input" type: "Input" top: "data" top: "label" '
                                  f'input_param {{ shape {{ dim: {batch} dim: 1 dim: 28 dim: 28 }} '
                                  f'shape {{ dim: {batch} }} }}', pb.LayerParameter()))
    param.layer.extend(layers)
    return param


def test_lenet_loss_decreases_under_sgd():
    rng = np.random.default_rng(0)
    data = rng.random((16, 1, 28, 28)).astype(np.float32)
    label = rng.integers(0, 10, 16).astype(np.float32)
    net = Net(lenet_on_inputs(16), TRAIN, seed=0)
    assert [e.param.type for e in net.entries][1:] == [
        "Convolution", "Pooling", "Convolution", "Pooling", "InnerProduct", "ReLU", "InnerProduct",
        "SoftmaxWithLoss"]
    assert net.blobs["pool2"].shape == (16, 50, 4, 4)
    losses = []
    for _ in range(30):
        net.clear_param_diffs()
        losses.append(net.forward_backward(data=data, label=label))
        for blob, lr_mult in zip(net.learnable_params, net.lr_mults):
            assert np.all(np.isfinite(blob.diff))
            blob.data -= 0.05 * lr_mult * blob.diff
    assert losses[0] > 2.0                 # about ln(10) before training
    assert losses[-1] < 0.5 * losses[0]    # it fits the random labels
    assert all(np.isfinite(losses))
