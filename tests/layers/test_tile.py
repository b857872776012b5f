"""Tile: numpy.tile-style copies along each axis (Caffe's test cases), gradients, errors."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, forward, make_layer


def text(options):
    return f'name: "t" type: "Tile" bottom: "x" top: "y" tile_param {{ {options} }}'


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1])
@pytest.mark.parametrize("tiles", [1, 3])
def test_forward_and_gradient(axis, tiles):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))  # Caffe's test blob
    (y,) = forward(text(f"axis: {axis} tiles: {tiles}"), [x])
    # Caffe's TestForward: top[.., t·d + i, ..] = bottom[.., i, ..] for the trailing block.
    a = axis % 4
    want = np.repeat(x.reshape(int(np.prod(x.shape[:a])), 1, -1), tiles, axis=1).reshape(y.shape)
    assert y.shape == x.shape[:a] + (x.shape[a] * tiles,) + x.shape[a + 1:]
    np.testing.assert_array_equal(y, want)
    assert check_gradient(text(f"axis: {axis} tiles: {tiles}"), [x], max_checks=60) > 0


def test_trailing_block_is_copied_whole():
    x = np.arange(6.0).reshape(2, 3)
    (y,) = forward(text("axis: 1 tiles: 2"), [x])
    np.testing.assert_array_equal(y, [[0, 1, 2, 0, 1, 2], [3, 4, 5, 3, 4, 5]])
    (y,) = forward(text("axis: 0 tiles: 2"), [x])
    np.testing.assert_array_equal(y, np.concatenate([x, x]))


@pytest.mark.parametrize("options, message", [("axis: 1", "tiles must be set"), ("tiles: 0", "tiles must be set"),
                                              ("axis: 3 tiles: 2", "tile_param.axis: axis 3 is out of range")])
def test_errors(options, message):
    with pytest.raises(LayerError, match=message):
        forward(text(options), [np.zeros((2, 3))])


@pytest.mark.parametrize("axis, independent", [(1, True), (-1, True), (0, False)])
def test_batch_independence(axis, independent):
    layer, bottom, _ = make_layer(text(f"axis: {axis} tiles: 2"), [np.zeros((2, 3))])
    assert layer.batch_independent_for(bottom) is independent
