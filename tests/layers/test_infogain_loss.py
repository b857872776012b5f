"""InfogainLoss: Caffe's TestInfogainLoss (axis 2, H as a bottom), H from a .binaryproto,
ignore_label and normalization, gradients."""
import numpy as np
import pytest

from layerforge import io
from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer

LOG_THRESHOLD = 1e-20


def infogain_text(options="", tops=2, extra=""):
    names = ' top: "loss"' + (' top: "prob"' if tops > 1 else "")
    return f'name: "info" type: "InfogainLoss" bottom: "x" bottom: "y"{names} {options} {extra}'


def caffe_inputs(seed=1701):
    """Caffe's fixture: data 4×2×5×2 uniform in [-0.5, 2], labels 4×2×1×2 in [0, 5), H 5×5 in [0.1, 2]."""
    rng = np.random.default_rng(seed)
    data = rng.uniform(-0.5, 2.0, (4, 2, 5, 2))
    labels = rng.integers(0, 5, (4, 2, 1, 2)).astype(np.float64)
    h = rng.uniform(0.1, 2.0, (1, 1, 5, 5))
    return data, labels, h


def reference(data, labels, h, axis, ignore_label=None, normalization="VALID"):
    """Caffe's loops: prob by an explicit softmax along `axis`, loss summed label by label."""
    outer, classes = int(np.prod(data.shape[:axis])), data.shape[axis]
    x = data.reshape(outer, classes, -1)
    prob = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    h = h.reshape(classes, classes)
    labels = labels.reshape(outer, -1).astype(int)
    loss, count = 0.0, 0
    for i in range(outer):
        for j in range(x.shape[2]):
            if labels[i, j] == ignore_label:
                continue
            for label in range(classes):
                loss -= h[labels[i, j], label] * np.log(max(prob[i, label, j], LOG_THRESHOLD))
            count += 1
    normalizer = {"VALID": count, "FULL": labels.size, "BATCH_SIZE": outer, "NONE": 1}[normalization]
    return loss / max(1, normalizer), prob.reshape(data.shape)


def test_caffe_infogain_loss():
    data, labels, h = caffe_inputs()
    text = infogain_text("infogain_loss_param { axis: 2 }") + ' bottom: "h"'
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        layer, bottom, top = make_layer(text, [data, labels, h], dtype=dtype)
        layer.forward(bottom, top)
        loss, prob = reference(data, labels, h, axis=2)
        assert top[1].shape == data.shape
        np.testing.assert_allclose(top[1].data, prob, atol=tol)
        np.testing.assert_allclose(top[0].data, loss, rtol=tol)


@pytest.mark.parametrize("tops", [1, 2])
def test_gradient_with_h_as_a_bottom(tops):
    data, labels, h = caffe_inputs()
    text = infogain_text("infogain_loss_param { axis: 2 }", tops) + ' bottom: "h"'
    assert check_gradient(text, [data, labels, h], check_bottoms=[0], num_tops=tops) > 0


@pytest.mark.parametrize("normalization", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
def test_h_from_binaryproto_ignore_label_and_normalization(tmp_path, normalization):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6).astype(np.float64)
    labels[[1, 4]] = 2
    h = rng.uniform(0.0, 1.5, (4, 4))
    path = tmp_path / "H.binaryproto"
    path.write_bytes(io.array_to_blobproto(h.astype(np.float32)).SerializeToString())
    text = infogain_text(f'infogain_loss_param {{ source: "{path}" }} loss_param {{ ignore_label: 2 '
                         f'normalization: {normalization} }}', tops=1)
    layer, bottom, top = make_layer(text, [data, labels])
    layer.forward(bottom, top)
    loss, _ = reference(data, labels, h.astype(np.float32), axis=1, ignore_label=2, normalization=normalization)
    np.testing.assert_allclose(top[0].data, loss, rtol=1e-12)
    assert check_gradient(text, [data, labels], check_bottoms=[0], num_tops=1) > 0
    top[0].diff[...] = 1.0
    layer.backward(top, [True, False], bottom)
    np.testing.assert_array_equal(bottom[0].diff[labels == 2], 0)   # ignored predictions get no gradient


def test_identity_h_is_softmax_with_loss():
    rng = np.random.default_rng(4)
    data, labels = rng.standard_normal((5, 3)), rng.integers(0, 3, 5).astype(np.float64)
    layer, bottom, top = make_layer(infogain_text(tops=1) + ' bottom: "h"', [data, labels, np.eye(3)])
    layer.forward(bottom, top)
    softmax, sb, st = make_layer('name: "s" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" top: "loss"',
                                 [data, labels])
    softmax.forward(sb, st)
    assert top[0].shape == ()
    np.testing.assert_allclose(top[0].data, st[0].data, rtol=1e-12)


@pytest.mark.parametrize("text, bottoms, message", [
    (infogain_text(tops=1), [np.zeros((2, 3)), np.zeros(2)], "infogain_loss_param.source"),
    (infogain_text(tops=1) + ' bottom: "h"', [np.zeros((2, 3)), np.zeros(2), np.eye(2)], "3x3 = 9"),
    (infogain_text('infogain_loss_param { source: "/nonexistent/H.binaryproto" }', tops=1),
     [np.zeros((2, 3)), np.zeros(2)], "not found"),
    (infogain_text("loss_param { normalize: true }", tops=1) + ' bottom: "h"',
     [np.zeros((2, 3)), np.zeros(2), np.eye(3)], "deprecated"),
])
def test_errors(text, bottoms, message):
    with pytest.raises(LayerError, match=message):
        make_layer(text, bottoms)
