"""Silence: takes any number of bottoms, produces nothing, and sends back zero gradients."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, make_layer


def silence_text(num_bottoms):
    return 'name: "s" type: "Silence" ' + " ".join(f'bottom: "b{i}"' for i in range(num_bottoms))


@pytest.mark.parametrize("shapes", [[(3,)], [(1, 4), (2, 3, 5)], [(2, 2), (1,), (3, 1, 2)]])
def test_zero_gradient(shapes):
    rng = np.random.default_rng(0)
    bottoms = [rng.standard_normal(s) for s in shapes]
    layer, bottom, top = make_layer(silence_text(len(shapes)), bottoms, num_tops=0)
    layer.forward(bottom, top)
    for blob, original in zip(bottom, bottoms):
        np.testing.assert_array_equal(blob.data, original)  # forward leaves the bottoms alone
        blob.diff[...] = 7
    layer.backward(top, [True] * len(bottom), bottom)
    for blob in bottom:
        assert not blob.diff.any()
    assert check_gradient(silence_text(len(shapes)), bottoms, num_tops=0) > 0


def test_backward_respects_propagate_down():
    layer, bottom, top = make_layer(silence_text(2), [np.ones(3), np.ones(2)], num_tops=0)
    for blob in bottom:
        blob.diff[...] = 5
    layer.backward(top, [False, True], bottom)
    assert (bottom[0].diff == 5).all() and not bottom[1].diff.any()
