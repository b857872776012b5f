"""HingeLoss: Caffe's one-vs-all form, L1 and L2, against numpy; gradients; label checks."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer


def text(norm=None):
    options = f"hinge_loss_param {{ norm: {norm} }}" if norm else ""
    return f'name: "h" type: "HingeLoss" bottom: "x" bottom: "label" top: "loss" {options}'


def reference(x, labels, l2=False):
    x = x.reshape(len(x), -1)
    margins = np.empty_like(x)
    for i in range(len(x)):
        for j in range(x.shape[1]):
            margins[i, j] = max(0.0, 1 - x[i, j] if j == labels[i] else 1 + x[i, j])
    return (margins ** 2 if l2 else margins).sum() / len(x)


def inputs(shape=(10, 5, 1, 1), seed=0):
    """Caffe's test: 10 items of 5 scores (gaussian, std 10 there; std 1 here keeps kinks rare)."""
    rng = np.random.default_rng(seed)
    dim = int(np.prod(shape[1:]))
    return rng.standard_normal(shape), rng.integers(0, dim, shape[0]).astype(float)


@pytest.mark.parametrize("norm", [None, "L1", "L2"])
@pytest.mark.parametrize("shape", [(10, 5, 1, 1), (4, 3), (3, 2, 2)])
def test_forward_and_gradient(norm, shape):
    x, labels = inputs(shape)
    (loss,) = forward(text(norm), [x, labels])
    np.testing.assert_allclose(loss, reference(x, labels.astype(int), norm == "L2"), rtol=1e-12)
    assert check_gradient(text(norm), [x, labels], check_bottoms=[0]) > 0


def test_labels_get_no_gradient():
    x, labels = inputs()
    layer, bottom, top = make_layer(text(), [x, labels])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    bottom[1].diff[...] = 2
    layer.backward(top, [True, True], bottom)
    assert not bottom[1].diff.any()


@pytest.mark.parametrize("labels, message", [(np.zeros(3), "label bottom has 3 values"),
                                             (np.array([0.0, 5.0]), r"label 5 is outside \[0, 5\)")])
def test_bad_labels(labels, message):
    with pytest.raises(LayerError, match=message):
        forward(text(), [np.zeros((2, 5)), labels])
