"""Reading Caffe, MyCaffe and layerforge files; every kind of bad input gets a clear message."""
import pathlib

import numpy as np
import pytest

from layerforge import io
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb

CONFIGS = pathlib.Path(__file__).parent / "configs"


@pytest.mark.parametrize("name", ["bvlc_siamese_train_test", "bvlc_lenet_train_test",
                                  "bvlc_lenet_deploy", "mycaffe_siamese_train_val"])
def test_reference_nets_parse(name):
    net = io.read_net(CONFIGS / f"{name}.prototxt")
    assert len(net.layer) > 3


def test_bvlc_siamese_keeps_deprecated_slice_dim_and_tied_names():
    net = io.read_net(CONFIGS / "bvlc_siamese_train_test.prototxt")
    slice_layer = next(l for l in net.layer if l.type == "Slice")
    assert slice_layer.slice_param.slice_dim == 1 and not slice_layer.slice_param.HasField("axis")
    names = [p.name for l in net.layer for p in l.param]
    assert names.count("conv1_w") == 2 and names.count("feat_b") == 2


def test_mycaffe_net_fields():
    net = io.read_net(CONFIGS / "mycaffe_siamese_train_val.prototxt")
    data = net.layer[0]
    assert data.data_param.backend == pb.DataParameter.IMAGEDB
    assert data.data_param.images_per_blob == 2 and data.data_param.output_all_labels
    assert data.transform_param.color_order == pb.TransformationParameter.RGB
    loss = next(l for l in net.layer if l.type == "ContrastiveLoss")
    assert list(loss.loss_weight) == [1, 0] and loss.contrastive_loss_param.output_matches
    assert loss.exclude[0].phase == pb.RUN


def test_mycaffe_solver_with_bare_strings():
    solver = io.read_solver(CONFIGS / "mycaffe_siamese_solver.prototxt")
    assert solver.lr_policy == "inv" and solver.type == "SGD" and solver.regularization_type == "L2"
    assert solver.snapshot_prefix == "examples/siamese/mnist_siamese"
    assert solver.eval_type == pb.SolverParameter.CLASSIFICATION
    assert solver.ap_version == pb.SolverParameter.INTEGRAL
    assert not solver.test_initialization and solver.device_id == 1


def test_mycaffe_ap_version_11point():
    solver = io.parse_text("ap_version: 11point\nbase_lr: 0.1", pb.SolverParameter())
    assert solver.ap_version == pb.SolverParameter.ELEVENPOINT


def test_bvlc_solver():
    solver = io.read_solver(CONFIGS / "bvlc_solver.prototxt")
    assert solver.net.endswith("mnist_siamese_train_test.prototxt") and solver.max_iter == 50000
    assert solver.solver_mode == pb.SolverParameter.GPU


# ---------------------------------------------------------------- bad input

def test_malformed_text_names_file_line_column(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "a"\n  type: "ReLU"\n')
    with pytest.raises(io.ConfigError, match=r"bad\.prototxt:4:\d+: Expected \"}\""):
        io.read_net(path)


def test_unknown_field_suggests_the_closest(tmp_path):
    path = tmp_path / "typo.prototxt"
    path.write_text('layer {\n  name: "c"\n  convolution_param { num_ouput: 3 }\n}\n')
    with pytest.raises(io.ConfigError, match=r'typo\.prototxt:3:\d+: .*no field named "num_ouput"'
                                               r'.*Did you mean num_output'):
        io.read_net(path)


def test_bad_enum_value(tmp_path):
    path = tmp_path / "enum.prototxt"
    path.write_text('layer { name: "p" pooling_param { pool: MAXIMUM } }')
    with pytest.raises(io.ConfigError, match=r"enum\.prototxt:1:\d+: .*MAXIMUM"):
        io.read_net(path)


def test_missing_file(tmp_path):
    with pytest.raises(io.ConfigError, match=r"nothere\.prototxt: file not found"):
        io.read_net(tmp_path / "nothere.prototxt")
    with pytest.raises(io.ConfigError, match=r"nothere\.caffemodel: file not found"):
        io.read_weights(tmp_path / "nothere.caffemodel")


def test_truncated_weights_file(tmp_path):
    net = pb.NetParameter(name="n")
    layer = net.layer.add(name="ip", type="InnerProduct")
    io.array_to_blobproto(np.arange(1000, dtype=np.float32).reshape(10, 100), layer.blobs.add())
    payload = net.SerializeToString()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(io.ConfigError, match=r"cut\.caffemodel: not a valid NetParameter file \(truncated"):
        io.read_weights(path)


def test_weights_file_without_layers(tmp_path):
    path = tmp_path / "empty.caffemodel"
    path.write_bytes(b"")
    with pytest.raises(io.ConfigError, match="holds no layers"):
        io.read_weights(path)


def test_blob_with_wrong_value_count():
    proto = pb.BlobProto()
    proto.shape.dim.extend([2, 3])
    proto.data.extend([1.0] * 5)
    with pytest.raises(io.ConfigError, match=r"shape \(2, 3\) needs 6 values, the file holds 5"):
        io.blobproto_to_array(proto)


# ---------------------------------------------------------------- blobs and atomic writes

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blobproto_round_trip(dtype):
    array = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(dtype)
    back = io.blobproto_to_array(io.array_to_blobproto(array))
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, array)


def test_legacy_4d_blob_shape():
    proto = pb.BlobProto(num=1, channels=2, height=1, width=3, data=[1, 2, 3, 4, 5, 6])
    assert io.blobproto_to_array(proto).shape == (1, 2, 1, 3)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "w.caffemodel"
    path.write_bytes(b"good")

    class Boom:
        def __len__(self):
            raise OSError("disk full")

    with pytest.raises(Exception):
        io.write_atomic(path, Boom())
    assert path.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["w.caffemodel"]


# Caffe-style nets and solvers written for these tests: every BVLC parameter message parses.
BVLC_NETS = ["bvlc_hdf5_classification_train_val", "bvlc_pascal_finetune_window_data",
             "bvlc_layer_params", "bvlc_v1_lenet", "bvlc_v0_net"]


@pytest.mark.parametrize("name", BVLC_NETS)
def test_bvlc_snippets_parse(name):
    net = io.parse_text((CONFIGS / f"{name}.prototxt").read_text(), pb.NetParameter(), name)
    assert len(net.layer) + len(net.layers) >= 5


@pytest.mark.parametrize("name", ["bvlc_solver", "bvlc_hdf5_classification_solver"])
def test_bvlc_solvers_parse(name):
    solver = io.read_solver(CONFIGS / f"{name}.prototxt")
    assert solver.base_lr > 0 and solver.max_iter > 0


def test_bvlc_parameter_messages_keep_their_values():
    net = io.parse_text((CONFIGS / "bvlc_pascal_finetune_window_data.prototxt").read_text(), pb.NetParameter())
    window = net.layer[1].window_data_param
    assert (window.context_pad, window.crop_mode, window.fg_fraction, window.batch_size) == (16, "warp", 0.25, 128)
    params = {layer.name: layer for layer in io.read_net(CONFIGS / "bvlc_layer_params.prototxt").layer}
    assert params["images"].image_data_param.root_folder == "examples/images/"
    assert params["spp"].spp_param.pool == pb.SPPParameter.AVE
    assert params["lstm"].recurrent_param.num_output == 16
    assert params["infogain"].infogain_loss_param.source == "infogain_H.binaryproto"
    assert params["norm"].lrn_param.norm_region == pb.LRNParameter.WITHIN_CHANNEL
    assert params["hinge"].hinge_loss_param.norm == pb.HingeLossParameter.L2


def test_legacy_v1_and_v0_layers_parse():
    v1 = io.parse_text((CONFIGS / "bvlc_v1_lenet.prototxt").read_text(), pb.NetParameter())
    conv = v1.layers[1]
    assert conv.type == pb.V1LayerParameter.CONVOLUTION and list(conv.blobs_lr) == [1, 2]
    v0 = io.parse_text((CONFIGS / "bvlc_v0_net.prototxt").read_text(), pb.NetParameter())
    assert v0.layers[0].layer.type == "padding" and v0.layers[1].layer.kernelsize == 5


def test_blob_without_shape_is_an_error_naming_the_layer(tmp_path):
    net = pb.NetParameter(name="n")
    layer = net.layer.add(name="ip", type="InnerProduct")
    layer.blobs.add(data=[1.0, 2.0, 3.0])
    path = tmp_path / "noshape.caffemodel"
    path.write_bytes(net.SerializeToString())
    model = io.parse_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }'
                          'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                          'inner_product_param { num_output: 1 bias_term: false } }', pb.NetParameter())
    with pytest.raises(io.ConfigError, match=r"noshape\.caffemodel: layer 'ip' blob 0: the blob has no shape"):
        Net(model, pb.TEST).copy_from(path)


def test_scalar_blob_with_an_empty_shape():
    proto = pb.BlobProto(data=[4.0])
    proto.shape.SetInParent()
    assert io.blobproto_to_array(proto).shape == ()


def test_atomic_write_gives_the_mode_the_umask_allows(tmp_path):
    import os

    old = os.umask(0o027)
    try:
        io.write_atomic(tmp_path / "new.caffemodel", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "new.caffemodel").stat().st_mode & 0o777 == 0o640
    kept = tmp_path / "kept.caffemodel"
    kept.write_bytes(b"old")
    kept.chmod(0o604)
    io.write_atomic(kept, b"new")
    assert kept.read_bytes() == b"new" and kept.stat().st_mode & 0o777 == 0o604
