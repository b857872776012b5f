"""Concat: forward against np.concatenate, gradients, deprecated concat_dim, Slice inverse, bad configs."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer


def concat_text(num_bottoms, options=""):
    bottoms = " ".join(f'bottom: "b{i}"' for i in range(num_bottoms))
    return f'name: "c" type: "Concat" {bottoms} top: "y" concat_param {{ {options} }}'


CASES = [  # bottom shapes, options, axis
    ([(1, 2, 3), (1, 5, 3)], "", 1),
    ([(3, 1, 2, 2), (3, 2, 2, 2), (3, 3, 2, 2)], "axis: 1", 1),
    ([(1, 4), (2, 4), (3, 4)], "axis: 0", 0),
    ([(2, 3, 1), (2, 3, 4)], "axis: -1", 2),
    ([(2, 3), (2, 1)], "concat_dim: 1", 1),
    ([(5, 3)], "", 1),
]


def bottoms_for(shapes, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("shapes, options, axis", CASES)
def test_forward_matches_numpy(shapes, options, axis):
    bottoms = bottoms_for(shapes, 0)
    (top,) = forward(concat_text(len(shapes), options), bottoms)
    np.testing.assert_array_equal(top, np.concatenate(bottoms, axis=axis))


@pytest.mark.parametrize("shapes, options, axis", CASES)
def test_gradient(shapes, options, axis):
    assert check_gradient(concat_text(len(shapes), options), bottoms_for(shapes, 1), max_checks=50) > 0


@pytest.mark.parametrize("shapes, options, message", [
    ([(2, 3), (3, 3)], "", r"bottom\[1\] shape \(3, 3\) does not match bottom\[0\] shape \(2, 3\)"),
    ([(2, 3), (2, 3, 1)], "", r"bottom\[1\] shape"),
    ([(2, 3), (2, 3)], "axis: 2", "axis 2 is out of range"),
])
def test_bad_config(shapes, options, message):
    with pytest.raises(LayerError, match=message):
        forward(concat_text(len(shapes), options), [np.zeros(s) for s in shapes])


@pytest.mark.parametrize("shape, axis, points", [((3, 7, 2), 1, [2, 3]), ((5, 2), 0, [1, 4]), ((1, 4, 3), -1, [1])])
def test_slice_and_concat_are_inverses(shape, axis, points):
    """Slice then Concat reproduces the input, Concat then Slice reproduces the pieces; diffs too."""
    rng = np.random.default_rng(2)
    num = len(points) + 1
    slice_points = " ".join(f"slice_point: {p}" for p in points)
    slice_text = ('name: "s" type: "Slice" bottom: "x" ' + " ".join(f'top: "t{i}"' for i in range(num))
                  + f" slice_param {{ axis: {axis} {slice_points} }}")
    x = rng.standard_normal(shape)
    slicer, s_bottom, pieces = make_layer(slice_text, [x])
    joiner, _, joined = make_layer(concat_text(num, f"axis: {axis}"), [p.data for p in pieces])
    slicer.forward(s_bottom, pieces)
    joiner.forward(pieces, joined)
    np.testing.assert_array_equal(joined[0].data, x)

    joined[0].diff[...] = rng.standard_normal(shape)
    joiner.backward(joined, [True] * num, pieces)
    slicer.backward(pieces, [True], s_bottom)
    np.testing.assert_array_equal(s_bottom[0].diff, joined[0].diff)

    # the other way round: Concat then Slice gives back the pieces and their diffs
    parts = np.split(x, points, axis=axis)
    joiner, c_bottom, c_top = make_layer(concat_text(num, f"axis: {axis}"), parts)
    slicer, _, again = make_layer(slice_text, [c_top[0].data])
    joiner.forward(c_bottom, c_top)
    slicer.forward(c_top, again)
    for part, got in zip(parts, again):
        np.testing.assert_array_equal(got.data, part)
    for piece in again:
        piece.diff[...] = rng.standard_normal(piece.shape)
    slicer.backward(again, [True], c_top)
    joiner.backward(c_top, [True] * num, c_bottom)
    for piece, b in zip(again, c_bottom):
        np.testing.assert_array_equal(b.diff, piece.diff)
