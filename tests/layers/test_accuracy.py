"""Accuracy: top_k, axis, ignore_label and per-class accuracy against a plain Python reference."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import forward, make_layer


def accuracy_text(options="", per_class=False):
    extra = 'top: "per_class"' if per_class else ""
    return (f'name: "a" type: "Accuracy" bottom: "x" bottom: "label" top: "accuracy" {extra} '
            f"accuracy_param {{ {options} }}")


def reference(x, labels, axis, top_k=1, ignore_label=None):
    """Caffe's rule, one prediction at a time: correct when fewer than top_k other scores are >= the true one."""
    classes = x.shape[axis]
    rows = np.moveaxis(x, axis, -1).reshape(-1, classes)
    seen, hits = np.zeros(classes), np.zeros(classes)
    for row, label in zip(rows, labels.reshape(-1).astype(int)):
        if label == ignore_label:
            continue
        seen[label] += 1
        others_as_good = sum(1 for k in range(classes) if k != label and row[k] >= row[label])
        hits[label] += others_as_good < top_k
    per_class = np.array([h / s if s else 0.0 for h, s in zip(hits, seen)])
    return (hits.sum() / seen.sum() if seen.sum() else 0.0), per_class


CASES = [  # shape, axis, label shape
    ((1, 4), 1, (1,)),
    ((20, 5), 1, (20, 1)),
    ((3, 4, 2, 3), 1, (3, 1, 2, 3)),
    ((4, 3, 6), 2, (4, 3)),
    ((5, 2, 3), -1, (5, 2)),
    ((7, 3), 0, (3,)),
]


@pytest.mark.parametrize("shape, axis, label_shape", CASES)
@pytest.mark.parametrize("top_k", [1, 2])
@pytest.mark.parametrize("ignore_label", [None, 0, -1])
def test_forward_matches_reference(shape, axis, label_shape, top_k, ignore_label):
    rng = np.random.default_rng(0)
    x = np.round(rng.standard_normal(shape), 1)  # rounding makes ties, which count against the true class
    classes = shape[axis]
    labels = rng.integers(0, classes, int(np.prod(label_shape))).astype(float)
    if ignore_label is not None:
        labels[::3] = ignore_label
    labels = labels.reshape(label_shape)
    options = f"axis: {axis} top_k: {top_k}" + (f" ignore_label: {ignore_label}" if ignore_label is not None else "")
    accuracy, per_class = forward(accuracy_text(options, per_class=True), [x, labels])
    want, want_per_class = reference(x, labels, axis % len(shape), top_k, ignore_label)
    assert accuracy.shape == () and per_class.shape == (classes,)
    np.testing.assert_allclose(accuracy, want, rtol=1e-12)
    np.testing.assert_allclose(per_class, want_per_class, rtol=1e-12)


def test_known_values():
    x = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])
    labels = np.array([1.0, 1.0, 2.0, 0.0])
    (accuracy,) = forward(accuracy_text(), [x, labels])
    assert accuracy == pytest.approx(0.5)  # row 3 ties 0.4 with 0.4: not counted, as in Caffe
    accuracy, per_class = forward(accuracy_text("top_k: 2", per_class=True), [x, labels])
    assert accuracy == pytest.approx(1.0)
    np.testing.assert_allclose(per_class, [1.0, 1.0, 1.0])


def test_everything_ignored_reports_zero():
    accuracy, per_class = forward(accuracy_text("ignore_label: 3", per_class=True), [np.ones((2, 4)), np.full(2, 3.0)])
    assert accuracy == 0 and not per_class.any()


def test_has_no_backward():
    layer, _, _ = make_layer(accuracy_text(), [np.ones((2, 3)), np.zeros(2)])
    assert not layer.has_backward and not layer.is_loss


@pytest.mark.parametrize("shape, labels, options, message", [
    ((2, 3), np.zeros(2), "top_k: 4", "top_k 4 must be between 1 and the number of classes 3"),
    ((2, 3), np.zeros(3), "", "label bottom has 3 values"),
    ((2, 3), np.array([0.0, 5.0]), "", r"label 5 is outside \[0, 3\)"),
    ((2, 3), np.zeros(2), "axis: 2", "axis 2 is out of range"),
])
def test_bad_config(shape, labels, options, message):
    with pytest.raises(LayerError, match=message):
        forward(accuracy_text(options), [np.zeros(shape), labels])
