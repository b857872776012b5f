"""SigmoidCrossEntropyLoss: Caffe's reference loss, normalization modes, ignore_label, stability, gradients."""
import numpy as np
import pytest

from layerforge.io import parse_text
from layerforge.layer import LayerError
from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb
from layerforge.testing import check_gradient, forward, make_layer


def text(loss_options=""):
    return (f'name: "l" type: "SigmoidCrossEntropyLoss" bottom: "x" bottom: "t" top: "loss" '
            f"loss_param {{ {loss_options} }}")


def reference(x, t, ignore_label=None, normalization="BATCH_SIZE"):
    """Caffe's test reference: -t·log(p) - (1 - t)·log(1 - p) summed, over the normalizer."""
    p = 1 / (1 + np.exp(-x))
    valid = t.astype(int) != ignore_label if ignore_label is not None else np.ones(t.shape, bool)
    terms = -(t * np.log(p + (t == 0)) + (1 - t) * np.log(1 - p + (t == 1)))
    normalizer = {"FULL": x.size, "VALID": valid.sum(), "BATCH_SIZE": x.shape[0], "NONE": 1}[normalization]
    return terms[valid].sum() / max(1, normalizer)


def inputs(shape=(10, 5, 1, 1), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), rng.uniform(0, 1, shape)


@pytest.mark.parametrize("seed", range(5))
def test_forward_matches_caffe_reference(seed):
    x, t = inputs(seed=seed)
    (loss,) = forward(text(), [x, t])
    np.testing.assert_allclose(loss, reference(x, t), rtol=1e-12)


@pytest.mark.parametrize("options, mode", [
    ("", "BATCH_SIZE"),
    ("normalization: VALID", "VALID"),
    ("normalization: FULL", "FULL"),
    ("normalization: BATCH_SIZE", "BATCH_SIZE"),
    ("normalization: NONE", "NONE"),
    ("normalize: true", "VALID"),
    ("normalize: false", "BATCH_SIZE"),
])
def test_normalization_modes_with_ignore_label(options, mode):
    x, t = inputs((4, 3, 2), seed=1)
    t.reshape(-1)[::3] = -1
    (loss,) = forward(text(f"ignore_label: -1 {options}"), [x, t])
    np.testing.assert_allclose(loss, reference(x, t, -1, mode), rtol=1e-12)
    assert check_gradient(text(f"ignore_label: -1 {options}"), [x, t], check_bottoms=[0]) > 0


@pytest.mark.parametrize("shape", [(10, 5, 1, 1), (3, 4), (6,)])
def test_gradient(shape):
    x, t = inputs(shape, seed=2)
    assert check_gradient(text(), [x, t], check_bottoms=[0]) > 0


def test_ignored_targets_get_zero_gradient():
    """Caffe's TestIgnoreGradient: the first half ignored has zero diff, the rest does not."""
    x, t = inputs(seed=3)
    t.reshape(-1)[:25] = -1
    layer, bottom, top = make_layer(text("ignore_label: -1"), [x, t])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    layer.backward(top, [True, False], bottom)
    diff = bottom[0].diff.reshape(-1)
    assert not diff[:25].any()
    assert np.all(diff[25:] != 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_scores_are_finite(dtype):
    x = np.array([[-1000.0, -90.0, 0.0, 90.0, 1000.0]])
    t = np.array([[1.0, 0.0, 0.5, 1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        (loss,) = forward(text("normalization: NONE"), [x, t], dtype=dtype)
    np.testing.assert_allclose(loss, 1000 + 0 + np.log(2) + 0 + 1000, rtol=1e-6)


def test_targets_get_no_gradient():
    x, t = inputs((2, 3), seed=4)
    layer, bottom, top = make_layer(text(), [x, t])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    bottom[1].diff[...] = 5
    layer.backward(top, [True, True], bottom)
    assert not bottom[1].diff.any()


def test_count_mismatch_is_an_error():
    with pytest.raises(LayerError, match="same count"):
        forward(text(), [np.zeros((2, 3)), np.zeros((2, 4))])


def test_loss_weight_in_a_net():
    """Caffe's TestSigmoidCrossEntropyLoss runs with loss_weight 3.7: the net's loss is 3.7 times the
    reference and the scores' gradient 3.7 (σ(x) - t) / N."""
    net = Net(parse_text('''
        force_backward: true
        layer { name: "in" type: "Input" top: "x" top: "t"
                input_param { shape { dim: 10 dim: 5 } shape { dim: 10 dim: 5 } } }
        layer { name: "loss" type: "SigmoidCrossEntropyLoss" bottom: "x" bottom: "t" top: "loss" loss_weight: 3.7 }
    ''', pb.NetParameter()), pb.TRAIN, dtype=np.float64)
    x, t = inputs((10, 5), seed=5)
    loss = net.forward_backward(x=x, t=t)
    np.testing.assert_allclose(loss, 3.7 * reference(x, t), rtol=1e-6)
    np.testing.assert_allclose(net.blobs["x"].diff, 3.7 * (1 / (1 + np.exp(-x)) - t) / 10, rtol=1e-6)
    assert not net.blobs["t"].diff.any()
