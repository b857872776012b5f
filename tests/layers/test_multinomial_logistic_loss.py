"""MultinomialLogisticLoss: -mean log p[label] with Caffe's 1e-20 clamp; gradients; labels."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer

TEXT = 'name: "m" type: "MultinomialLogisticLoss" bottom: "prob" bottom: "label" top: "loss"'


def inputs(shape=(10, 5, 1, 1), seed=0):
    """Caffe's test: 10 items of 5 positive probabilities (positive_unitball), random labels."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 1, shape)
    p /= p.reshape(shape[0], -1).sum(axis=1).reshape((-1,) + (1,) * (len(shape) - 1))
    return p, rng.integers(0, int(np.prod(shape[1:])), shape[0]).astype(float)


@pytest.mark.parametrize("shape", [(10, 5, 1, 1), (4, 3), (3, 2, 2)])
def test_forward_and_gradient(shape):
    p, labels = inputs(shape)
    (loss,) = forward(TEXT, [p, labels])
    rows = p.reshape(shape[0], -1)
    np.testing.assert_allclose(loss, -np.mean(np.log(rows[np.arange(shape[0]), labels.astype(int)])), rtol=1e-12)
    assert check_gradient(TEXT, [p, labels], check_bottoms=[0]) > 0


def test_clamp_at_log_threshold():
    p = np.array([[0.0, 1.0], [0.5, 0.5]])
    labels = np.array([0.0, 1.0])
    layer, bottom, top = make_layer(TEXT, [p, labels])
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, -(np.log(1e-20) + np.log(0.5)) / 2, rtol=1e-12)
    top[0].diff[...] = 1
    layer.backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, [[-0.5 / 1e-20, 0], [0, -0.5 / 0.5]], rtol=1e-12)


def test_labels_get_no_gradient():
    p, labels = inputs()
    layer, bottom, top = make_layer(TEXT, [p, labels])
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    bottom[1].diff[...] = 2
    layer.backward(top, [True, True], bottom)
    assert not bottom[1].diff.any()


@pytest.mark.parametrize("labels, message", [(np.zeros(3), "label bottom has 3 values"),
                                             (np.array([0.0, -1.0]), r"label -1 is outside \[0, 5\)")])
def test_bad_labels(labels, message):
    with pytest.raises(LayerError, match=message):
        forward(TEXT, [np.full((2, 5), 0.2), labels])
