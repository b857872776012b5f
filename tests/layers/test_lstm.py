"""LSTM: blobs as Caffe lays them out, forward against a numpy recurrence (gates i, f, o, g),
Caffe's TestForward, gradients for x, x_static, the exposed h_0 and c_0 and every parameter
(with a restart mid-sequence)."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer
from tests.layers.recurrent_checks import check_caffe_forward, recurrent_text, sequence


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_lstm(x, cont, blobs, static=None, h0=None, c0=None):
    timesteps, num = x.shape[:2]
    x = x.reshape(timesteps, num, -1)
    if static is not None:
        w_xc, b_c, w_static, w_hc = blobs
    else:
        (w_xc, b_c, w_hc), w_static = blobs, None
    hidden = w_hc.shape[1]
    h = np.zeros((num, hidden)) if h0 is None else h0.reshape(num, -1)
    c = np.zeros((num, hidden)) if c0 is None else c0.reshape(num, -1)
    outputs = []
    for t in range(timesteps):
        gates = (cont[t][:, None] * h) @ w_hc.T + x[t] @ w_xc.T + b_c
        if w_static is not None:
            gates += static.reshape(num, -1) @ w_static.T
        i, f, o, g = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = cont[t][:, None] * sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.array(outputs), h, c


def test_blob_order_and_shapes():
    x, cont = sequence()
    layer, _, top = make_layer(recurrent_text("LSTM", 4, bottoms=3), [x, cont, np.zeros((3, 2, 5))])
    assert [b.shape for b in layer.blobs] == [(16, 6), (16,), (16, 10), (16, 4)]   # W_xc b_c W_xc_static W_hc
    assert top[0].shape == (5, 3, 4)
    layer, _, top = make_layer(recurrent_text("LSTM", 4, True, 4, 3), [x, cont, np.zeros((1, 3, 4)),
                                                                       np.zeros((1, 3, 4))])
    assert [b.shape for b in layer.blobs] == [(16, 6), (16,), (16, 4)]
    assert [t.shape for t in top] == [(5, 3, 4), (1, 3, 4), (1, 3, 4)]


@pytest.mark.parametrize("static, expose", [(False, False), (True, False), (False, True), (True, True)])
def test_forward_against_numpy(static, expose):
    x, cont = sequence()
    rng = np.random.default_rng(2)
    bottoms = [x, cont] + ([rng.standard_normal((3, 5))] if static else [])
    h0, c0 = rng.standard_normal((2, 1, 3, 4))
    if expose:
        bottoms += [h0, c0]
    layer, bottom, top = make_layer(recurrent_text("LSTM", 4, expose, len(bottoms), 1 + 2 * expose), bottoms)
    for _ in range(2):   # without expose_hidden the second pass starts from the first's h_T, c_T
        layer.forward(bottom, top)
    blobs = [b.data for b in layer.blobs]
    s = bottoms[2] if static else None
    _, h1, c1 = reference_lstm(x, cont, blobs, s, h0 if expose else None, c0 if expose else None)
    expected, h_final, c_final = reference_lstm(x, cont, blobs, s, h0 if expose else h1, c0 if expose else c1)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)
    if expose:
        np.testing.assert_allclose(top[1].data[0], h_final, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(top[2].data[0], c_final, rtol=1e-12, atol=1e-12)


def test_state_carries_over_without_expose_hidden():
    """cont 1 at the first step of the second batch: it continues the first batch's sequence."""
    x, cont = sequence(cont=(1, 1, 1, 1, 1))
    layer, bottom, top = make_layer(recurrent_text("LSTM", 4), [x, cont])
    layer.forward(bottom, top)
    layer.forward(bottom, top)
    blobs = [b.data for b in layer.blobs]
    _, h, c = reference_lstm(x, cont, blobs)
    expected, _, _ = reference_lstm(x, cont, blobs, h0=h, c0=c)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)


def test_caffe_forward_step_by_step():
    check_caffe_forward("LSTM")
    check_caffe_forward("LSTM", [np.random.default_rng(3).standard_normal((3, 2, 3, 4))])


@pytest.mark.parametrize("static, expose", [(False, False), (True, False), (False, True), (True, True)])
def test_gradient(static, expose):
    x, cont = sequence()
    if expose:
        cont[0] = 1      # the exposed h_0, c_0 count at the first step; the restart at t = 3 stays
    rng = np.random.default_rng(4)
    bottoms = [x, cont] + ([rng.standard_normal((3, 5))] if static else [])
    if expose:
        bottoms += list(rng.standard_normal((2, 1, 3, 4)))
    checked = [i for i in range(len(bottoms)) if i != 1]
    assert check_gradient(recurrent_text("LSTM", 4, expose, len(bottoms), 1 + 2 * expose), bottoms,
                          check_bottoms=checked, num_tops=1 + 2 * expose, max_checks=60) > 0


@pytest.mark.parametrize("bottoms, tops, expose, message", [
    ([(5, 3, 2), (5, 3), (1, 3, 4)], 3, True, "got 3"),
    ([(5, 3, 2), (5, 3), (1, 3, 4), (1, 3, 4)], 2, True, "takes 3 top"),
])
def test_errors(bottoms, tops, expose, message):
    with pytest.raises(LayerError, match=message):
        make_layer(recurrent_text("LSTM", 4, expose, len(bottoms), tops), [np.zeros(s) for s in bottoms],
                   num_tops=tops)
