"""Helpers shared by the elementwise (neuron) layer tests: kink-free inputs and the in-place check."""
import numpy as np

from layerforge.blob import Blob
from layerforge.registry import create_layer
from layerforge.testing import PHASES, layer_param, make_layer

SHAPES = [(1, 1), (2, 3, 4, 5), (7,), (3, 5, 1, 1), (1, 2, 3)]


def away_from_zero(shape, seed=0, low=0.05, high=2.0):
    """Random values of random sign with |x| >= low, so no element sits on a kink at 0."""
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def run(layer, bottom, top, top_diff):
    """Forward, then backward with `top_diff`; return the top data, the bottom diff and the param diffs."""
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    y = top[0].data.copy()
    for blob in layer.blobs:
        blob.diff[...] = 0
    top[0].diff[...] = top_diff
    layer.backward(top, [True], bottom)
    return y, bottom[0].diff.copy(), [b.diff.copy() for b in layer.blobs]


def check_in_place(text, x, phase="TRAIN", seed=0):
    """The layer run with top == bottom (one Blob) gives the same top, bottom diff and param diffs."""
    top_diff = np.random.default_rng(seed + 7).standard_normal(x.shape)
    layer, bottom, top = make_layer(text, [x], phase, seed)
    want = run(layer, bottom, top, top_diff)

    shared = Blob.from_array(x, np.float64)
    layer = create_layer(layer_param(text), PHASES[phase], np.random.default_rng(seed))
    layer.setup([shared], [shared])
    got = run(layer, [shared], [shared], top_diff)

    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=0)
    for g, w in zip(got[2], want[2]):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)
