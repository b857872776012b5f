"""AccuracyDecode: argmin of Decode distances against column 0 of the labels."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.layers.decode import FLT_MAX
from layerforge.testing import forward, make_layer


def accuracy_text(options=""):
    return ('name: "acc" type: "AccuracyDecode" bottom: "decode" bottom: "label" top: "accuracy"'
            f' accuracy_param {{ {options} }}')


def reference(dist, labels, ignore=None):
    keep = labels != ignore
    return np.mean(dist.argmin(axis=1)[keep] == labels[keep])


@pytest.mark.parametrize("n, num_classes", [(1, 1), (1, 4), (8, 3), (33, 10)])
@pytest.mark.parametrize("label_shape", ["N", "N x 2", "N x 2 x 1 x 1"])
def test_forward_matches_numpy(n, num_classes, label_shape):
    rng = np.random.default_rng(n * num_classes)
    dist = rng.random((n, num_classes))
    labels = rng.integers(0, num_classes, n)
    bottom_labels = {"N": labels, "N x 2": np.stack([labels, labels[::-1]], 1),
                     "N x 2 x 1 x 1": np.stack([labels, labels[::-1]], 1)[:, :, None, None]}[label_shape]
    top = forward(accuracy_text(), [dist, bottom_labels.astype(float)])
    assert top[0].shape == () and top[0] == pytest.approx(reference(dist, labels))


def test_hand_example_with_ignore_label():
    dist = np.array([[0.1, 2.0, 3.0], [5.0, 0.2, 1.0], [1.0, 0.5, 0.1], [0.0, 1.0, 2.0]])
    labels = np.array([0, 2, 2, 1.0])
    assert forward(accuracy_text(), [dist, labels])[0] == pytest.approx(0.5)
    assert forward(accuracy_text("ignore_label: 2"), [dist, labels])[0] == pytest.approx(0.5)
    assert forward(accuracy_text("ignore_label: 1"), [dist, labels])[0] == pytest.approx(2 / 3)


def test_rows_without_any_learned_class_are_wrong():
    dist = np.array([[FLT_MAX, FLT_MAX], [FLT_MAX, 1.0]])
    assert forward(accuracy_text(), [dist, np.array([0.0, 1.0])])[0] == pytest.approx(0.5)


def test_no_classes_or_every_row_ignored_gives_zero():
    assert forward(accuracy_text(), [np.zeros((3, 0)), np.zeros(3)])[0] == 0
    assert forward(accuracy_text("ignore_label: 0"), [np.ones((3, 2)), np.zeros(3)])[0] == 0


@pytest.mark.parametrize("options, bottoms, message", [
    ("", [np.zeros((3, 2)), np.zeros(2)], "must have 3 rows"),
    ("", [np.zeros((3, 2))], "exactly 2 bottom"),
    ("top_k: 2", [np.zeros((3, 2)), np.zeros(3)], "top_k 2 is not supported"),
])
def test_bad_inputs(options, bottoms, message):
    with pytest.raises(LayerError, match=message):
        make_layer(accuracy_text(options), bottoms)


def test_no_backward():
    layer, _, _ = make_layer(accuracy_text(), [np.zeros((2, 2)), np.zeros(2)])
    assert layer.has_backward is False and not layer.is_loss
