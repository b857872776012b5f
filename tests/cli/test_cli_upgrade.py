"""`layerforge upgrade`: Caffe's upgrade_net_proto_text / _binary."""
import pathlib

from layerforge import io
from layerforge.cli import main
from layerforge.proto import layerforge_pb2 as pb

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def test_upgrade_text_net(tmp_path, capsys):
    out = tmp_path / "lenet.prototxt"
    assert main(["upgrade", str(CONFIGS / "bvlc_v1_lenet.prototxt"), str(out)]) == 0
    assert capsys.readouterr().out == f"Wrote {out}\n"
    net = io.parse_text(out.read_text(), pb.NetParameter())
    assert not net.layers and [layer.type for layer in net.layer] == [
        "Data", "Convolution", "Pooling", "InnerProduct", "ReLU", "SoftmaxWithLoss"]
    assert [(p.lr_mult, p.decay_mult) for p in net.layer[1].param] == [(1, 1), (2, 0)]


def test_upgrade_binary_weights(tmp_path, capsys):
    old = pb.NetParameter(name="w")
    old.layers.add(name="ip", type=pb.V1LayerParameter.INNER_PRODUCT,
                   blobs=[pb.BlobProto(shape=pb.BlobShape(dim=[1, 2]), data=[3, 4])])
    (tmp_path / "old.caffemodel").write_bytes(old.SerializeToString())
    assert main(["upgrade", str(tmp_path / "old.caffemodel"), str(tmp_path / "new.caffemodel")]) == 0
    new = pb.NetParameter.FromString((tmp_path / "new.caffemodel").read_bytes())
    assert [(l.name, l.type, list(l.blobs[0].data)) for l in new.layer] == [("ip", "InnerProduct", [3, 4])]
    assert main(["upgrade", str(tmp_path / "new.caffemodel"), str(tmp_path / "same.caffemodel")]) == 0
    assert "was already in the current format" in capsys.readouterr().out


def test_upgrade_of_a_broken_file_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.prototxt").write_text("layers { type: NOT_A_TYPE }\n")
    assert main(["upgrade", str(tmp_path / "bad.prototxt"), str(tmp_path / "out.prototxt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerforge: error: ") and err.count("\n") == 1 and "bad.prototxt:1:" in err
    assert not (tmp_path / "out.prototxt").exists()
