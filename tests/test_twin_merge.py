"""Tied twin branches run as one batch of 2N (layerforge.twins) give what separate runs give."""
import numpy as np
import pytest

from layerforge import io
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb
from layerforge.tools.timing import time_net

MODEL = "prototxt/mnist_siamese_train_test.prototxt"


def siamese_param(num=4):
    """The tutorial's Siamese TRAIN net with its Data layer replaced by an Input layer."""
    param = io.read_net(MODEL)
    layers = [layer for layer in param.layer if layer.type != "Data"]
    del param.layer[:]
    param.layer.add(name="pair_data", type="Input", top=["pair_data", "sim"]).input_param.shape.extend(
        [pb.BlobShape(dim=[num, 2, 28, 28]), pb.BlobShape(dim=[num, 2])])
    param.layer.extend(layers)
    return param


def inputs(num, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, (num, 2)).astype(float)
    labels[::2, 1] = labels[::2, 0]   # some similar pairs, some dissimilar
    return {"pair_data": rng.random((num, 2, 28, 28)), "sim": labels}


def run(merge, dtype=np.float64, num=4, steps=1, param=None):
    net = Net(param or siamese_param(num), pb.TRAIN, dtype=dtype, merge_twins=merge, seed=5)
    for step in range(steps):
        net.clear_param_diffs()
        net.forward_backward(**inputs(num, step))
    return net


def assert_same(merged, separate, rtol):
    assert merged.loss == pytest.approx(separate.loss, rel=rtol)
    for name, blob in separate.blobs.items():
        scale = max(np.abs(blob.data).max(), 1e-30)
        assert np.abs(merged.blobs[name].data - blob.data).max() <= rtol * scale, name
    for name, blobs in separate.params.items():
        # Biases feeding only the difference of the twins (ip2, feat) have a gradient that
        # cancels to rounding noise: compare against the layer's largest gradient.
        scale = max(max(np.linalg.norm(b.diff) for b in blobs), 1e-30)
        for mine, theirs in zip(merged.params[name], blobs):
            assert np.linalg.norm(mine.diff - theirs.diff) <= rtol * scale, name


def test_siamese_twins_are_merged():
    net = run(True)
    first = ["conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2", "feat"]
    names = [e.param.name for e in net.entries]
    assert sorted(names[i] for i in net._twins) == sorted(first)
    assert sorted(names[i] for i in net._twin_skip) == sorted(n + "_p" for n in first)
    assert not run(False)._twins


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("num", [1, 4])
def test_merged_matches_separate(dtype, rtol, num):
    assert_same(run(True, dtype, num, steps=2), run(False, dtype, num, steps=2), rtol)


def test_batch_size_change_regathers_the_twins():
    merged, separate = run(True, num=4), run(False, num=4)
    for net in (merged, separate):
        net.clear_param_diffs()
        net.forward_backward(**inputs(3, seed=7))
    assert merged.blobs["feat_p"].shape == (3, 2)
    assert_same(merged, separate, 1e-12)


def test_env_switch_turns_merging_off(monkeypatch):
    monkeypatch.setenv("LAYERFORGE_MERGE_TWINS", "0")
    assert not Net(siamese_param(), pb.TRAIN)._twins
    monkeypatch.setenv("LAYERFORGE_MERGE_TWINS", "1")
    assert Net(siamese_param(), pb.TRAIN)._twins


def test_untied_or_different_branches_are_not_merged():
    param = siamese_param()
    for layer in param.layer:
        if layer.name == "conv1_p":
            layer.param[0].name = "conv1_w_p"     # its own weights: not twins
    net = Net(param, pb.TRAIN, dtype=np.float64)
    assert not net._twins
    param = siamese_param()
    for layer in param.layer:
        if layer.name == "pool2_p":
            layer.pooling_param.pool = pb.PoolingParameter.AVE
    net = Net(param, pb.TRAIN, dtype=np.float64)
    assert sorted(net.entries[i].param.name for i in net._twins) == ["conv1", "conv2", "pool1"]
    assert_same(run(True, param=param), run(False, param=param), 1e-12)


def test_extra_reader_ends_the_chain():
    """pool1 feeds a Split as well as conv2: its twins still merge, conv2's do not."""
    param = siamese_param()
    param.layer.add(name="peek", type="Silence", bottom=["pool1"])
    net = Net(param, pb.TRAIN, dtype=np.float64)
    assert sorted(net.entries[i].param.name for i in net._twins) == ["conv1", "pool1"]
    assert_same(run(True, param=param), run(False, param=param), 1e-12)


def test_weights_sharing_and_timing_work_merged(tmp_path):
    merged, separate = run(True), run(False)
    merged.save(tmp_path / "w.caffemodel")
    loaded = Net(siamese_param(), pb.TRAIN, dtype=np.float64, weights=tmp_path / "w.caffemodel")
    assert loaded._twins
    test = Net(siamese_param(), pb.TEST, dtype=np.float64)
    test.share_with(merged)
    assert test._twins
    for net in (loaded, test, separate):
        net.forward(**inputs(4, 9))
    assert loaded.loss == pytest.approx(separate.loss, rel=1e-12)
    assert test.blobs["feat_p"].data == pytest.approx(separate.blobs["feat_p"].data, rel=1e-12)
    report = time_net(merged, iterations=1)
    assert [row[0] for row in report.layers] == [e.param.name for e in merged.entries]
    assert merged.first_nonfinite_layer() is None
