"""Split: every top is a copy of the bottom; the bottom's gradient is the sum of the top gradients."""
import numpy as np
import pytest

from layerforge.testing import check_gradient, forward, make_layer


def split_text(num_tops):
    return 'name: "s" type: "Split" bottom: "x" ' + " ".join(f'top: "t{i}"' for i in range(num_tops))


@pytest.mark.parametrize("shape", [(1,), (1, 3), (2, 3, 5), (3, 1, 4, 2)])
@pytest.mark.parametrize("num_tops", [1, 2, 3])
def test_forward_copies(shape, num_tops):
    x = np.random.default_rng(0).standard_normal(shape)
    tops = forward(split_text(num_tops), [x])
    assert len(tops) == num_tops
    for top in tops:
        np.testing.assert_array_equal(top, x)


@pytest.mark.parametrize("shape", [(1, 3), (2, 3, 5)])
@pytest.mark.parametrize("num_tops", [1, 2, 3])
def test_gradient(shape, num_tops):
    x = np.random.default_rng(1).standard_normal(shape)
    assert check_gradient(split_text(num_tops), [x], max_checks=40) > 0


def test_backward_sums_top_diffs():
    rng = np.random.default_rng(2)
    layer, bottom, top = make_layer(split_text(3), [rng.standard_normal((2, 4))])
    layer.forward(bottom, top)
    for blob in top:
        blob.diff[...] = rng.standard_normal(blob.shape)
    bottom[0].diff[...] = 99  # stale values must be overwritten, not added to
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, sum(blob.diff for blob in top))
