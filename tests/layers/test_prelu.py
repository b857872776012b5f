"""PReLU: a learnable negative slope per channel (axis 1) or one shared slope."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer
from tests.layers.neuron_checks import away_from_zero, check_in_place


def prelu_text(options=""):
    return f'name: "p" type: "PReLU" bottom: "x" top: "y" prelu_param {{ {options} }}'


GAUSSIAN = 'filler { type: "gaussian" std: 0.5 }'


def reference(x, slope):
    a = np.reshape(slope, (1, -1) + (1,) * (x.ndim - 2))
    return np.where(x > 0, x, a * x)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3, 4, 5), (3, 5), (1, 4, 7), (2, 1, 3, 3)])
@pytest.mark.parametrize("channel_shared", [False, True])
def test_forward_and_gradient(shape, channel_shared):
    text = prelu_text(f"channel_shared: {str(channel_shared).lower()} {GAUSSIAN}")
    x = away_from_zero(shape)
    layer, bottom, top = make_layer(text, [x])
    slope = layer.blobs[0].data
    assert slope.shape == (() if channel_shared else (shape[1],))
    layer.forward(bottom, top)
    np.testing.assert_allclose(top[0].data, reference(x, slope), rtol=1e-12)
    assert check_gradient(text, [x], max_checks=40) > 0


def test_default_slope_is_a_quarter():
    x = away_from_zero((2, 3, 4))
    layer, _, _ = make_layer(prelu_text(), [x])
    np.testing.assert_array_equal(layer.blobs[0].data, np.full(3, 0.25))
    (y,) = forward(prelu_text(), [x])
    np.testing.assert_allclose(y, reference(x, np.full(3, 0.25)), rtol=1e-12)


@pytest.mark.parametrize("channel_shared", [False, True])
def test_in_place_matches_separate_blobs(channel_shared):
    check_in_place(prelu_text(f"channel_shared: {str(channel_shared).lower()} {GAUSSIAN}"),
                   away_from_zero((3, 4, 5)))


def test_bad_shapes_raise():
    with pytest.raises(LayerError, match="at least 2 axes"):
        make_layer(prelu_text(), [away_from_zero((5,))])
    layer, bottom, top = make_layer(prelu_text(), [away_from_zero((2, 3))])
    bottom[0].reshape((2, 4))
    with pytest.raises(LayerError, match=r"4 channels.*\(3,\)"):
        layer.reshape(bottom, top)
