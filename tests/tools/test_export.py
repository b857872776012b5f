"""ONNX export: every exported net runs in onnxruntime and gives layerforge's outputs."""
from pathlib import Path

import numpy as np
import pytest

from layerforge.cli import main
from layerforge.io import parse_text
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb
from layerforge.tools.export import ExportError, export_onnx

ort = pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[2]

# Every mapped layer type, with settings away from their defaults.
ZOO = """
name: "zoo"
layer { name: "in" type: "Input" top: "x" top: "y"
        input_param { shape { dim: 2 dim: 4 dim: 9 dim: 9 } shape { dim: 2 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "conv"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 stride: 2 dilation: 2 group: 2
                            bias_term: false weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "deconv" type: "Deconvolution" bottom: "conv" top: "deconv"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1
                            weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" } } }
layer { name: "bn" type: "BatchNorm" bottom: "deconv" top: "deconv" }
layer { name: "scale" type: "Scale" bottom: "deconv" top: "scaled"
        scale_param { bias_term: true filler { type: "gaussian" } bias_filler { type: "gaussian" } } }
layer { name: "bias" type: "Bias" bottom: "scaled" top: "biased" bias_param { filler { type: "gaussian" } } }
layer { name: "leaky" type: "ReLU" bottom: "biased" top: "leaky" relu_param { negative_slope: 0.2 } }
layer { name: "lrn" type: "LRN" bottom: "leaky" top: "lrn" lrn_param { local_size: 3 alpha: 0.5 beta: 0.7 k: 2 } }
layer { name: "maxpool" type: "Pooling" bottom: "lrn" top: "maxpool"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "avepool" type: "Pooling" bottom: "lrn" top: "avepool"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "avepad" type: "Pooling" bottom: "lrn" top: "avepad"
        pooling_param { pool: AVE kernel_size: 3 stride: 3 pad: 1 } }
layer { name: "global" type: "Pooling" bottom: "lrn" top: "global" pooling_param { pool: AVE global_pooling: true } }
layer { name: "sum" type: "Eltwise" bottom: "maxpool" bottom: "avepool" top: "sum"
        eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }
layer { name: "prod" type: "Eltwise" bottom: "maxpool" bottom: "avepool" bottom: "sum" top: "prod"
        eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "prod" bottom: "sum" top: "max" eltwise_param { operation: MAX } }
layer { name: "concat" type: "Concat" bottom: "max" bottom: "sum" top: "concat" }
layer { name: "slice" type: "Slice" bottom: "concat" top: "s1" top: "s2" slice_param { slice_point: 3 } }
layer { name: "sigmoid" type: "Sigmoid" bottom: "s1" top: "sigmoid" }
layer { name: "tanh" type: "TanH" bottom: "s2" top: "tanh" }
layer { name: "elu" type: "ELU" bottom: "tanh" top: "elu" elu_param { alpha: 0.7 } }
layer { name: "prelu" type: "PReLU" bottom: "elu" top: "prelu" prelu_param { filler { type: "gaussian" } } }
layer { name: "abs" type: "AbsVal" bottom: "prelu" top: "abs" }
layer { name: "power" type: "Power" bottom: "abs" top: "power" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "bnll" type: "BNLL" bottom: "sigmoid" top: "bnll" }
layer { name: "flat" type: "Flatten" bottom: "bnll" top: "flat" }
layer { name: "reshape" type: "Reshape" bottom: "power" top: "reshape" reshape_param { shape { dim: 0 dim: -1 } } }
layer { name: "drop" type: "Dropout" bottom: "reshape" top: "reshape" }
layer { name: "ip" type: "InnerProduct" bottom: "flat" top: "ip"
        inner_product_param { num_output: 6 transpose: true weight_filler { type: "gaussian" std: 0.2 }
                              bias_filler { type: "gaussian" } } }
layer { name: "ip_y" type: "Eltwise" bottom: "ip" bottom: "y" top: "ip_y" }
layer { name: "softmax" type: "Softmax" bottom: "ip_y" top: "softmax" }
layer { name: "global_flat" type: "Flatten" bottom: "global" top: "global_flat" }
"""


def run_onnx(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {k: v.astype(np.float32) for k, v in feeds.items()})))


def assert_same_outputs(net, path, feeds):
    want = net.forward(**feeds)
    got = run_onnx(path, feeds)
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=2e-4, atol=2e-5, err_msg=name)


def test_every_mapped_layer_type(tmp_path):
    net = Net(parse_text(ZOO, pb.NetParameter()), "RUN")
    rng = np.random.default_rng(0)
    mean, variance, factor = net.params["bn"]
    mean.data[...] = rng.normal(size=mean.shape) * 3
    variance.data[...] = rng.uniform(0.5, 2, variance.shape) * 3
    factor.data[...] = 3
    export_onnx(net, tmp_path / "zoo.onnx")
    feeds = {"x": rng.normal(size=(2, 4, 9, 9)), "y": rng.normal(size=(2, 6))}
    assert_same_outputs(net, tmp_path / "zoo.onnx", feeds)
    assert {"prob", "softmax"} & set(net.outputs)
    # The batch size is free: another batch size runs too.
    feeds = {"x": rng.normal(size=(3, 4, 9, 9)), "y": rng.normal(size=(3, 6))}
    net.blobs["x"].reshape((3, 4, 9, 9))
    assert_same_outputs(net, tmp_path / "zoo.onnx", feeds)


def test_mnist_siamese_deploy_with_its_centroids_and_input_transform(tmp_path, capsys):
    train = Net(ROOT / "prototxt" / "mnist_siamese_train_test.prototxt", "RUN")
    decode = train.layers["decode1"]
    rng = np.random.default_rng(1)
    decode.set_centroids(rng.normal(size=(10, 2)), np.array([5] * 7 + [0] + [5] * 2))   # class 7 unseen
    weights = tmp_path / "siamese.caffemodel"
    train.save(weights)
    model = ROOT / "prototxt" / "mnist_siamese_deploy.prototxt"
    assert main(["export", "--onnx", str(model), str(weights), str(tmp_path / "siamese.onnx")]) == 0
    assert "inputs data; outputs decode1" in capsys.readouterr().out
    net = Net(model, "RUN", weights=weights)
    pixels = rng.integers(0, 256, (5, 1, 28, 28)).astype(np.float32)      # raw: the graph scales them
    assert_same_outputs(net, tmp_path / "siamese.onnx", {"data": pixels})
    assert run_onnx(tmp_path / "siamese.onnx", {"data": pixels})["decode1"][:, 7].min() == np.finfo(np.float32).max


def test_lenet_deploy(tmp_path):
    net = Net(ROOT / "tests" / "configs" / "bvlc_lenet_deploy.prototxt", "RUN")
    weights = tmp_path / "lenet.caffemodel"
    net.save(weights)
    assert main(["export", str(net.source), str(weights), str(tmp_path / "lenet.onnx")]) == 0
    images = np.random.default_rng(2).normal(size=(4, 1, 28, 28))
    net.blobs["data"].reshape(images.shape)
    assert_same_outputs(net, tmp_path / "lenet.onnx", {"data": images})


def test_a_layer_without_mapping_is_named(tmp_path, capsys):
    model = tmp_path / "argmax.prototxt"
    model.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 5 } } }\n'
                     'layer { name: "pick" type: "ArgMax" bottom: "x" top: "k" }\n')
    weights = tmp_path / "w.caffemodel"
    Net(model, "RUN").save(weights)
    with pytest.raises(ExportError, match=r"layer 'pick' \(ArgMax\) has no ONNX mapping; the export knows "):
        export_onnx(Net(model, "RUN"), tmp_path / "x.onnx")
    assert main(["export", "--onnx", str(model), str(weights), str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("layerforge: error: layer 'pick' (ArgMax) has no ONNX mapping")
    assert "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()
