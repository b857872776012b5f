"""AlexNet, CaffeNet and a GoogLeNet inception block (tests/configs, Caffe's layers at a reduced
input size) build and run forward on random weights: Caffe's blob shapes, LRN in place in the
net as the numpy reference computes it, the inception concat, and a proper softmax."""
import pathlib

import numpy as np
import pytest

from layerforge import Net
from layerforge.proto import layerforge_pb2 as pb

CONFIGS = pathlib.Path(__file__).resolve().parent / "configs"

ALEXNET_SHAPES = {"data": (2, 3, 99, 99), "conv1": (2, 96, 23, 23), "pool1": (2, 96, 11, 11),
                  "conv2": (2, 256, 11, 11), "pool2": (2, 256, 5, 5), "conv3": (2, 384, 5, 5),
                  "conv4": (2, 384, 5, 5), "conv5": (2, 256, 5, 5), "pool5": (2, 256, 2, 2),
                  "fc6": (2, 4096), "fc7": (2, 4096), "fc8": (2, 1000), "prob": (2, 1000)}
CASES = {
    "bvlc_alexnet_deploy.prototxt": (dict(ALEXNET_SHAPES, norm1=(2, 96, 23, 23), norm2=(2, 256, 11, 11)),
                                     [("norm1", "conv1"), ("norm2", "conv2")]),
    "bvlc_caffenet_deploy.prototxt": (dict(ALEXNET_SHAPES, norm1=(2, 96, 11, 11), norm2=(2, 256, 5, 5)),
                                      [("norm1", "pool1"), ("norm2", "pool2")]),
    "bvlc_googlenet_inception_deploy.prototxt": (
        {"conv1/7x7_s2": (2, 64, 32, 32), "pool1/3x3_s2": (2, 64, 16, 16), "conv2/3x3": (2, 192, 16, 16),
         "pool2/3x3_s2": (2, 192, 8, 8), "inception_3a/1x1": (2, 64, 8, 8), "inception_3a/3x3": (2, 128, 8, 8),
         "inception_3a/5x5": (2, 32, 8, 8), "inception_3a/pool_proj": (2, 32, 8, 8),
         "inception_3a/output": (2, 256, 8, 8), "pool5/7x7_s1": (2, 256, 1, 1), "prob": (2, 1000)},
        [("pool1/norm1", "pool1/3x3_s2"), ("conv2/norm2", "conv2/3x3")]),
}


def lrn_reference(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's ACROSS_CHANNELS LRN of an N×C×H×W array."""
    channels = x.shape[1]
    pad = (size - 1) // 2
    sums = np.stack([(x[:, max(c - pad, 0):c + pad + 1] ** 2).sum(axis=1) for c in range(channels)], axis=1)
    return x / (k + alpha / size * sums) ** beta


def randomize(net, rng):
    """He-scaled gaussian weights and small positive biases, so activations stay in range."""
    for blobs in net.params.values():
        weight = blobs[0].data
        weight[...] = rng.standard_normal(weight.shape) * np.sqrt(2.0 / (weight.size // weight.shape[0]))
        for bias in blobs[1:]:
            bias.data[...] = 0.1


@pytest.mark.parametrize("config", list(CASES))
def test_deploy_net_runs_forward(config):
    shapes, norms = CASES[config]
    net = Net(str(CONFIGS / config), pb.TEST)
    randomize(net, np.random.default_rng(0))
    images = np.random.default_rng(1).uniform(-1, 1, net.blobs["data"].shape).astype(np.float32)
    prob = net.forward(data=images)["prob"]

    for name, shape in shapes.items():
        assert net.blobs[name].shape == shape, name
    assert prob.shape == (2, 1000) and np.all(np.isfinite(prob))
    np.testing.assert_allclose(prob.sum(axis=1), 1, rtol=1e-5)
    assert prob.std(axis=1).min() > 0 and not np.allclose(prob[0], prob[1])
    for top, bottom in norms:
        bottom_data = net.blobs[bottom].data.astype(np.float64)
        assert bottom_data.std() > 0
        np.testing.assert_allclose(net.blobs[top].data, lrn_reference(bottom_data), rtol=1e-5, atol=1e-6)
    if "inception_3a/output" in shapes:
        branches = [net.blobs[f"inception_3a/{b}"].data for b in ("1x1", "3x3", "5x5", "pool_proj")]
        np.testing.assert_array_equal(net.blobs["inception_3a/output"].data, np.concatenate(branches, axis=1))
