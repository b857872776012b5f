"""Eltwise PROD / SUM (coeff) / MAX against numpy; gradients for every bottom; bad configs."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward


def eltwise_text(num_bottoms, options=""):
    bottoms = " ".join(f'bottom: "b{i}"' for i in range(num_bottoms))
    return f'name: "e" type: "Eltwise" {bottoms} top: "y" eltwise_param {{ {options} }}'


def distinct_bottoms(num, shape, seed):
    """Bottoms whose values all differ by at least 0.1, so MAX has no ties near the check's eps."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape))
    values = (rng.permutation(num * count) - num * count / 2) * 0.1
    return list(values.reshape((num, *shape)))


SHAPES = [(1, 3), (2, 3, 5), (3, 1, 2, 3)]

CASES = [  # options, number of bottoms, numpy reference
    ("operation: PROD", 2, lambda b: b[0] * b[1]),
    ("operation: PROD stable_prod_grad: false", 3, lambda b: b[0] * b[1] * b[2]),
    ("", 2, lambda b: b[0] + b[1]),
    ("operation: SUM coeff: 1 coeff: -1", 2, lambda b: b[0] - b[1]),
    ("operation: SUM coeff: 0.5 coeff: 2 coeff: -3", 3, lambda b: 0.5 * b[0] + 2 * b[1] - 3 * b[2]),
    ("operation: MAX", 2, lambda b: np.maximum(b[0], b[1])),
    ("operation: MAX", 4, lambda b: np.max(b, axis=0)),
]


@pytest.mark.parametrize("options, num, reference", CASES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_numpy(options, num, reference, shape):
    bottoms = distinct_bottoms(num, shape, 0)
    (top,) = forward(eltwise_text(num, options), bottoms)
    np.testing.assert_allclose(top, reference(bottoms), rtol=1e-12)


@pytest.mark.parametrize("options, num, reference", CASES)
@pytest.mark.parametrize("shape", SHAPES)
def test_gradient(options, num, reference, shape):
    assert check_gradient(eltwise_text(num, options), distinct_bottoms(num, shape, 1), max_checks=30) > 0


def test_prod_gradient_with_a_zero_bottom():
    """The product-of-others gradient stays exact where a bottom is zero."""
    bottoms = distinct_bottoms(3, (2, 3), 2)
    bottoms[0][0, 0] = 0.0
    assert check_gradient(eltwise_text(3, "operation: PROD"), bottoms) > 0


def test_float32():
    bottoms = [b.astype(np.float32) for b in distinct_bottoms(2, (2, 3), 3)]
    (top,) = forward(eltwise_text(2, "coeff: 0.5 coeff: 2"), bottoms, dtype=np.float32)
    assert top.dtype == np.float32
    np.testing.assert_allclose(top, 0.5 * bottoms[0] + 2 * bottoms[1], rtol=1e-6)


@pytest.mark.parametrize("shapes, options, message", [
    ([(2, 3), (3, 2)], "", r"bottom\[1\] shape \(3, 2\) does not match bottom\[0\] shape \(2, 3\)"),
    ([(2, 3), (2, 3), (2, 3, 1)], "", r"bottom\[2\] shape"),
    ([(2, 3), (2, 3)], "coeff: 1", "coeff has 1 values for 2 bottoms"),
    ([(2, 3), (2, 3)], "operation: MAX coeff: 1 coeff: 2", "only used by operation SUM, not MAX"),
    ([(2, 3)], "", "at least 2 bottom"),
])
def test_bad_config(shapes, options, message):
    with pytest.raises(LayerError, match=message):
        forward(eltwise_text(len(shapes), options), [np.ones(s) for s in shapes])
