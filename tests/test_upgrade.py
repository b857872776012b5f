"""Caffe's legacy V0 and V1 nets and weights load by upgrading them, as UpgradeNetAsNeeded does."""
import logging
import pathlib

import numpy as np
import pytest
from google.protobuf import text_format

from layerforge import io, upgrade
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb

CONFIGS = pathlib.Path(__file__).parent / "configs"

# bvlc_v1_deploy.prototxt written by hand in the current format.
CURRENT_DEPLOY = """
name: "SmallNetV1"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3 pad: 1
    weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  inner_product_param { num_output: 5 weight_filler { type: "xavier" }
    bias_filler { type: "constant" value: 0.2 } } }
layer { name: "prob" type: "Softmax" bottom: "ip1" top: "prob" }
"""

# bvlc_v0_net.prototxt as Caffe's upgrade_net_proto_text writes it: the padding layer is
# folded into conv1, V0's flat fields land in each type's parameter message.
CURRENT_V0 = """
name: "CaffeNetV0"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 10 dim: 3 dim: 32 dim: 32 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 8 pad: 2 kernel_size: 5 stride: 1
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" value: 0 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
  lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "fc2" type: "InnerProduct" bottom: "norm1" top: "fc2"
  inner_product_param { num_output: 10 bias_term: true weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "prob" type: "Softmax" bottom: "fc2" top: "prob" }
"""


def _text(net):
    return text_format.MessageToString(net)


def _v1_weights(net_param):
    """A Caffe V1 .caffemodel payload: `layers` entries with the enum type and the blobs."""
    types = {name: value for value, name in upgrade.V1_TYPES.items()}
    old = pb.NetParameter(name=net_param.name)
    for layer in net_param.layer:
        if layer.blobs:
            old.layers.add(name=layer.name, type=types[layer.type], bottom=layer.bottom,
                           top=layer.top, blobs=layer.blobs)
    return old


def test_v1_net_upgrades_to_the_current_format():
    upgraded = io.read_net(CONFIGS / "bvlc_v1_deploy.prototxt")
    assert _text(upgraded) == _text(io.parse_text(CURRENT_DEPLOY, pb.NetParameter()))


def test_v0_net_upgrades_folding_its_padding_layer():
    upgraded = io.read_net(CONFIGS / "bvlc_v0_net.prototxt")
    assert _text(upgraded) == _text(io.parse_text(CURRENT_V0, pb.NetParameter()))


def test_v1_net_and_v1_weights_match_their_upgraded_form(tmp_path):
    current = Net(io.parse_text(CURRENT_DEPLOY, pb.NetParameter()), pb.TEST, seed=3)
    v1_weights = tmp_path / "v1.caffemodel"
    v1_weights.write_bytes(_v1_weights(current.to_proto()).SerializeToString())
    legacy = Net(CONFIGS / "bvlc_v1_deploy.prototxt", pb.TEST, weights=str(v1_weights))
    data = np.random.default_rng(0).normal(size=(2, 3, 12, 12)).astype(np.float32)
    expected = current.forward(data=data)["prob"].copy()
    np.testing.assert_array_equal(legacy.forward(data=data)["prob"], expected)
    assert not np.allclose(expected, expected[:1].mean())   # the weights are not trivial


def test_v1_weights_read_as_current_layers(tmp_path):
    current = Net(io.parse_text(CURRENT_DEPLOY, pb.NetParameter()), pb.TEST, seed=1).to_proto()
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(_v1_weights(current).SerializeToString())
    weights = io.read_weights(path)
    assert [(l.name, l.type, len(l.blobs)) for l in weights.layer] == [
        ("conv1", "Convolution", 2), ("ip1", "InnerProduct", 2)]
    np.testing.assert_array_equal(io.blobproto_to_array(weights.layer[1].blobs[0]),
                                  io.blobproto_to_array(current.layer[-2].blobs[0]))


def test_upgrade_logs_one_line(caplog):
    with caplog.at_level(logging.INFO, logger="layerforge"):
        io.read_net(CONFIGS / "bvlc_v1_lenet.prototxt")
    lines = [r.getMessage() for r in caplog.records if "legacy" in r.getMessage()]
    assert lines == [f"{CONFIGS / 'bvlc_v1_lenet.prototxt'}: upgraded from Caffe's legacy format: V1 layers"]


def test_current_nets_are_returned_unchanged(caplog):
    net = io.parse_text(CURRENT_DEPLOY, pb.NetParameter())
    with caplog.at_level(logging.INFO, logger="layerforge"):
        assert upgrade.upgrade_net(net) is net
    assert not caplog.records


def test_v1_data_transformation_fields_move_to_transform_param():
    net = io.parse_text("""
layers { name: "d" type: DATA top: "data" top: "label"
  data_param { source: "db" backend: LMDB batch_size: 4 scale: 0.5 mirror: true crop_size: 20 mean_file: "m" } }
layers { name: "w" type: WINDOW_DATA top: "w" window_data_param { source: "win" scale: 2 } }
""", pb.NetParameter())
    data, window = upgrade.upgrade_net(net).layer
    assert (data.type, data.data_param.source, data.data_param.batch_size) == ("Data", "db", 4)
    assert not data.data_param.HasField("scale") and not data.data_param.HasField("mirror")
    t = data.transform_param
    assert (t.scale, t.mirror, t.crop_size, t.mean_file) == (0.5, True, 20, "m")
    assert (window.type, window.transform_param.scale) == ("WindowData", 2)


def test_v1_shared_parameter_names_and_loss_weights():
    net = io.parse_text("""
layers { name: "a" type: INNER_PRODUCT bottom: "x" top: "a" param: "w" param: "b"
  blob_share_mode: PERMISSIVE weight_decay: 3 inner_product_param { num_output: 2 } }
layers { name: "l" type: EUCLIDEAN_LOSS bottom: "a" bottom: "y" top: "l" loss_weight: 0.5 }
""", pb.NetParameter())
    a, loss = upgrade.upgrade_net(net).layer
    assert [(p.name, p.share_mode, p.lr_mult, p.decay_mult) for p in a.param] == [
        ("w", pb.ParamSpec.PERMISSIVE, 1, 3), ("b", pb.ParamSpec.STRICT, 1, 1)]
    assert (loss.type, list(loss.loss_weight)) == ("EuclideanLoss", [0.5])


def test_old_batch_norm_parameters_are_frozen():
    net = io.parse_text('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" '
                        'param { lr_mult: 1 } param { lr_mult: 1 } param { lr_mult: 1 } }', pb.NetParameter())
    assert [(p.lr_mult, p.decay_mult) for p in upgrade.upgrade_net(net).layer[0].param] == [(0, 0)] * 3


def test_input_fields_without_shape_are_dropped():
    net = upgrade.upgrade_net(pb.NetParameter(input=["data"], layer=[pb.LayerParameter(name="a")]))
    assert not net.input and [l.name for l in net.layer] == ["a"]


def test_padding_layer_feeding_a_non_conv_layer_is_an_error(tmp_path):
    path = tmp_path / "v0.prototxt"
    path.write_text('input: "x"\nlayers { layer { name: "p" type: "padding" pad: 1 } bottom: "x" top: "p" }\n'
                    'layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }\n')
    with pytest.raises(io.ConfigError, match=r"v0\.prototxt: padding layer 'p' must feed one conv or pool.*'r'"):
        io.read_net(path)


def test_unknown_v0_type_is_an_error(tmp_path):
    path = tmp_path / "v0.prototxt"
    path.write_text('layers { layer { name: "z" type: "zap" } }\n')
    with pytest.raises(io.ConfigError, match=r"v0\.prototxt: layer 'z': unknown V0 layer type 'zap'"):
        io.read_net(path)


def test_mixed_layer_and_layers_is_refused(tmp_path):
    path = tmp_path / "mixed.prototxt"
    path.write_text('layer { name: "a" type: "ReLU" }\nlayers { name: "b" type: RELU }\n')
    with pytest.raises(io.ConfigError, match="both `layer` and legacy `layers`"):
        io.read_net(path)


def test_net_built_from_a_v1_netparameter(caplog):
    legacy = io.parse_text((CONFIGS / "bvlc_v1_deploy.prototxt").read_text(), pb.NetParameter())
    with caplog.at_level(logging.INFO, logger="layerforge"):
        net = Net(legacy, pb.TEST)
    assert list(net.layers) == ["input", "conv1", "relu1", "pool1", "ip1", "prob"]
    assert any("<NetParameter>: upgraded from Caffe's legacy format: V1 layers, input fields" in r.getMessage()
               for r in caplog.records)


def test_v0_fields_a_layer_type_does_not_take_are_named_in_a_warning(caplog):
    net = io.parse_text('input: "x" layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "x" top: "x" }',
                        pb.NetParameter())
    with caplog.at_level(logging.INFO, logger="layerforge"):
        layer, = upgrade.upgrade_net(net, "old.prototxt").layer
    assert (layer.name, layer.type) == ("r", "ReLU")
    record, = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == ("old.prototxt: upgraded from Caffe's legacy format: V0 layers, V1 layers, "
                                   "input fields (not carried over: layer 'r': num_output for type 'relu')")


def test_upgrade_file_writes_text_and_binary(tmp_path):
    out = tmp_path / "deploy.prototxt"
    assert upgrade.upgrade_file(CONFIGS / "bvlc_v1_deploy.prototxt", out)
    assert _text(io.read_net(out)) == _text(io.parse_text(CURRENT_DEPLOY, pb.NetParameter()))
    assert "layers {" not in out.read_text()
    current = Net(io.parse_text(CURRENT_DEPLOY, pb.NetParameter()), pb.TEST, seed=2).to_proto()
    old = tmp_path / "v1.caffemodel"
    old.write_bytes(_v1_weights(current).SerializeToString())
    assert upgrade.upgrade_file(old, tmp_path / "new.caffemodel")
    new = io.read_binary(tmp_path / "new.caffemodel", pb.NetParameter())
    assert not new.layers and [layer.type for layer in new.layer] == ["Convolution", "InnerProduct"]
    assert not upgrade.upgrade_file(tmp_path / "new.caffemodel", tmp_path / "same.caffemodel")
    assert (tmp_path / "same.caffemodel").read_bytes() == (tmp_path / "new.caffemodel").read_bytes()


def test_v0_net_runs():
    net = Net(CONFIGS / "bvlc_v0_net.prototxt", pb.TEST)
    assert net.blobs["conv1"].shape == (10, 8, 32, 32)   # the folded padding keeps 32x32
    prob = net.forward(data=np.random.default_rng(0).normal(size=(10, 3, 32, 32)).astype(np.float32))["prob"]
    np.testing.assert_allclose(prob.sum(axis=1), 1, rtol=1e-5)
