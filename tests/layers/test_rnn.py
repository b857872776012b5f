"""RNN: blobs as Caffe lays them out, forward against a numpy recurrence, Caffe's TestForward,
gradients for x, x_static, the exposed h_0 and every parameter (with a restart mid-sequence)."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer
from tests.layers.recurrent_checks import check_caffe_forward, recurrent_text, sequence


def reference_rnn(x, cont, blobs, static=None, h0=None):
    timesteps, num = x.shape[:2]
    x = x.reshape(timesteps, num, -1)
    if static is not None:
        w_xh, b_h, w_static, w_hh, w_ho, b_o = blobs
    else:
        (w_xh, b_h, w_hh, w_ho, b_o), w_static = blobs, None
    h = np.zeros((num, len(b_h))) if h0 is None else h0.reshape(num, -1)
    outputs = []
    for t in range(timesteps):
        pre = w_hh @ (cont[t][:, None] * h).T + w_xh @ x[t].T + b_h[:, None]
        if w_static is not None:
            pre += w_static @ static.reshape(num, -1).T
        h = np.tanh(pre).T
        outputs.append(np.tanh(h @ w_ho.T + b_o))
    return np.array(outputs), h


def test_blob_order_and_shapes():
    x, cont = sequence()
    static = np.zeros((3, 2, 5))
    layer, _, top = make_layer(recurrent_text("RNN", 4, bottoms=3), [x, cont, static])
    assert [b.shape for b in layer.blobs] == [(4, 6), (4,), (4, 10), (4, 4), (4, 4), (4,)]  # W_xh b_h W_xh_static W_hh W_ho b_o
    assert top[0].shape == (5, 3, 4)
    layer, _, _ = make_layer(recurrent_text("RNN", 4), [x, cont])
    assert [b.shape for b in layer.blobs] == [(4, 6), (4,), (4, 4), (4, 4), (4,)]


@pytest.mark.parametrize("static, expose", [(False, False), (True, False), (False, True), (True, True)])
def test_forward_against_numpy(static, expose):
    x, cont = sequence()
    rng = np.random.default_rng(2)
    bottoms = [x, cont] + ([rng.standard_normal((3, 5))] if static else [])
    h0 = rng.standard_normal((1, 3, 4))
    if expose:
        bottoms.append(h0)
    layer, bottom, top = make_layer(recurrent_text("RNN", 4, expose, len(bottoms), 1 + expose), bottoms)
    for _ in range(2):   # without expose_hidden the second pass starts from the first's h_T
        layer.forward(bottom, top)
    blobs = [b.data for b in layer.blobs]
    first_output, first_h = reference_rnn(x, cont, blobs, bottoms[2] if static else None, h0 if expose else None)
    expected, h_final = reference_rnn(x, cont, blobs, bottoms[2] if static else None, h0 if expose else first_h)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)
    if expose:
        np.testing.assert_allclose(top[1].data[0], h_final, rtol=1e-12, atol=1e-12)


def test_caffe_forward_step_by_step():
    check_caffe_forward("RNN")
    check_caffe_forward("RNN", [np.random.default_rng(3).standard_normal((3, 2, 3, 4))])


@pytest.mark.parametrize("static, expose", [(False, False), (True, False), (False, True), (True, True)])
def test_gradient(static, expose):
    x, cont = sequence()
    if expose:
        cont[0] = 1      # the exposed h_0 counts at the first step; the restart at t = 3 stays
    rng = np.random.default_rng(4)
    bottoms = [x, cont] + ([rng.standard_normal((3, 5))] if static else [])
    if expose:
        bottoms.append(rng.standard_normal((1, 3, 4)))
    checked = [i for i in range(len(bottoms)) if i != 1]
    assert check_gradient(recurrent_text("RNN", 4, expose, len(bottoms), 1 + expose), bottoms,
                          check_bottoms=checked, num_tops=1 + expose, max_checks=60) > 0


@pytest.mark.parametrize("bottoms, tops, expose, message", [
    ([(5, 3, 2), (5, 3)], 2, False, "takes 1 top"),
    ([(5, 3, 2), (5, 3), (3, 2), (3, 2), (1, 3, 4)], 1, False, "got 5"),
    ([(5, 3), (5, 3)], 1, False, "at least 3 axes"),
    ([(5, 3, 2), (5, 2)], 1, False, "cont must be"),
    ([(5, 3, 2), (5, 3), (1, 3, 5)], 2, True, "h_0 must have shape"),
])
def test_errors(bottoms, tops, expose, message):
    with pytest.raises(LayerError, match=message):
        make_layer(recurrent_text("RNN", 4, expose, len(bottoms), tops), [np.zeros(s) for s in bottoms],
                   num_tops=tops)
