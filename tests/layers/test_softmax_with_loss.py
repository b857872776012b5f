"""SoftmaxWithLoss: loss against numpy for every normalization mode and ignore_label; gradients."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer

FLT_MIN = np.finfo(np.float32).tiny


def loss_text(axis=None, loss_options="", with_prob=False):
    softmax = f"softmax_param {{ axis: {axis} }}" if axis is not None else ""
    prob = 'top: "prob"' if with_prob else ""
    return (f'name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss" {prob} '
            f"{softmax} loss_param {{ {loss_options} }}")


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def reference_loss(x, labels, axis, ignore_label=None, normalization="VALID"):
    classes = x.shape[axis]
    prob = np.moveaxis(softmax(x, axis), axis, -1).reshape(-1, classes)  # one row per prediction
    labels = labels.reshape(-1).astype(int)
    valid = labels != ignore_label if ignore_label is not None else np.ones(len(labels), bool)
    total = -sum(np.log(max(prob[i, labels[i]], FLT_MIN)) for i in range(len(labels)) if valid[i])
    normalizer = {"FULL": len(labels), "VALID": valid.sum(), "BATCH_SIZE": int(np.prod(x.shape[:axis])),
                  "NONE": 1}[normalization]
    return total / max(1, normalizer)


def make_inputs(shape, axis, label_shape=None, ignore_label=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    classes = shape[axis]
    predictions = int(np.prod(shape)) // classes
    labels = rng.integers(0, classes, predictions).astype(float)
    if ignore_label is not None:
        labels[rng.permutation(predictions)[:max(1, predictions // 3)]] = ignore_label
    return x, labels.reshape(label_shape or (predictions,))


SHAPES = [  # score shape, axis (None = default 1), label shape
    ((1, 3), None, None),
    ((4, 5), None, (4, 1)),
    ((2, 3, 4, 5), None, (2, 1, 4, 5)),
    ((3, 4, 5), 2, (3, 4)),
    ((3, 4, 5), -1, None),
    ((5, 3, 2), 0, (3, 2)),
]


@pytest.mark.parametrize("shape, axis, label_shape", SHAPES)
@pytest.mark.parametrize("ignore_label", [None, 1, -1])
def test_forward_and_gradient(shape, axis, label_shape, ignore_label):
    real_axis = 1 if axis is None else axis % len(shape)
    x, labels = make_inputs(shape, real_axis, label_shape, ignore_label)
    options = f"ignore_label: {ignore_label}" if ignore_label is not None else ""
    (loss,) = forward(loss_text(axis, options), [x, labels])
    assert loss.shape == ()
    np.testing.assert_allclose(loss, reference_loss(x, labels, real_axis, ignore_label), rtol=1e-12)
    assert check_gradient(loss_text(axis, options), [x, labels], check_bottoms=[0], max_checks=60) > 0


@pytest.mark.parametrize("loss_options, mode", [
    ("normalization: VALID", "VALID"),
    ("normalization: BATCH_SIZE", "BATCH_SIZE"),
    ("normalization: FULL", "FULL"),
    ("normalization: NONE", "NONE"),
    ("normalize: true", "VALID"),
    ("normalize: false", "BATCH_SIZE"),
    ("normalization: FULL normalize: true", "FULL"),  # normalization wins over the deprecated bool
])
@pytest.mark.parametrize("shape, axis, label_shape", [((6, 4), 1, None), ((2, 3, 2, 3), 1, (2, 1, 2, 3))])
def test_normalization_modes(loss_options, mode, shape, axis, label_shape):
    x, labels = make_inputs(shape, axis, label_shape, ignore_label=0, seed=3)
    text = loss_text(None, f"ignore_label: 0 {loss_options}")
    (loss,) = forward(text, [x, labels])
    np.testing.assert_allclose(loss, reference_loss(x, labels, axis, 0, mode), rtol=1e-12)
    assert check_gradient(text, [x, labels], check_bottoms=[0], max_checks=60) > 0


def test_all_ignored_gives_zero_loss_and_gradient():
    x = np.random.default_rng(4).standard_normal((3, 4))
    labels = np.full(3, 2.0)
    layer, bottom, top = make_layer(loss_text(None, "ignore_label: 2"), [x, labels])
    layer.forward(bottom, top)
    assert top[0].data == 0
    top[0].diff[...] = 1
    layer.backward(top, [True, False], bottom)
    assert not bottom[0].diff.any()


@pytest.mark.parametrize("shape, axis", [((4, 5), 1), ((2, 3, 4), 2)])
def test_probability_top(shape, axis):
    x, labels = make_inputs(shape, axis, seed=5)
    text = loss_text(axis, with_prob=True)
    loss, prob = forward(text, [x, labels])
    np.testing.assert_allclose(prob, softmax(x, axis), rtol=1e-12)
    np.testing.assert_allclose(loss, reference_loss(x, labels, axis), rtol=1e-12)
    assert check_gradient(text, [x, labels], check_bottoms=[0], max_checks=60) > 0


def test_labels_get_no_gradient():
    x, labels = make_inputs((3, 4), 1, seed=6)
    layer, bottom, top = make_layer(loss_text(), [x, labels])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    bottom[1].diff[...] = 5
    layer.backward(top, [True, True], bottom)
    assert not bottom[1].diff.any()
    assert bottom[0].diff.any()


def test_loss_layer_flags():
    layer, _, _ = make_layer(loss_text(), list(make_inputs((2, 3), 1)))
    assert layer.is_loss and layer.has_backward


def test_float32():
    x, labels = make_inputs((8, 10), 1, seed=7)
    (loss,) = forward(loss_text(), [x.astype(np.float32), labels], dtype=np.float32)
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss, reference_loss(x, labels, 1), rtol=1e-5)


@pytest.mark.parametrize("shape, labels, options, message", [
    ((4, 3), np.zeros(3), "", r"label bottom has 3 values \(shape \(3,\)\) but there are 4 predictions"),
    ((2, 3, 4), np.zeros(2), "", "label bottom has 2 values"),
    ((2, 3), np.array([0.0, 3.0]), "", r"label 3 is outside \[0, 3\)"),
    ((2, 3), np.array([-1.0, 0.0]), "ignore_label: 255", "label -1 is outside .* and is not ignore_label 255"),
])
def test_bad_labels(shape, labels, options, message):
    with pytest.raises(LayerError, match=message):
        forward(loss_text(None, options), [np.zeros(shape), labels])
