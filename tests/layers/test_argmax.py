"""ArgMax: Caffe's output layouts with and without axis, top_k, out_max_val, ties; no backward."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import forward, make_layer


def text(options=""):
    return f'name: "a" type: "ArgMax" bottom: "x" top: "y" argmax_param {{ {options} }}'


def caffe_order(row):
    """Indices of `row` by Caffe's std::greater on (value, index): value descending, then index descending."""
    return sorted(range(len(row)), key=lambda j: (row[j], j), reverse=True)


def reference(x, top_k=1, out_max_val=False, axis=None):
    if axis is None:
        rows = x.reshape(x.shape[0], -1)
        out = np.ones((x.shape[0], 2 if out_max_val else 1, top_k) + (1,) * (x.ndim - 3))
        for i, row in enumerate(rows):
            best = caffe_order(row)[:top_k]
            out[i, 0].reshape(-1)[:] = best
            if out_max_val:
                out[i, 1].reshape(-1)[:] = row[best]
        return out
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape[:-1] + (top_k,))
    for index in np.ndindex(moved.shape[:-1]):
        best = caffe_order(moved[index])[:top_k]
        out[index] = moved[index][best] if out_max_val else best
    return np.moveaxis(out, -1, axis)


CASES = [("", {}), ("top_k: 4", {"top_k": 4}), ("out_max_val: true", {"out_max_val": True}),
         ("out_max_val: true top_k: 3", {"out_max_val": True, "top_k": 3}),
         ("axis: 1", {"axis": 1}), ("axis: 1 top_k: 2", {"axis": 1, "top_k": 2}),
         ("axis: 2 out_max_val: true top_k: 3", {"axis": 2, "out_max_val": True, "top_k": 3}),
         ("axis: -1 top_k: 2", {"axis": 3, "top_k": 2}), ("axis: 0", {"axis": 0})]


@pytest.mark.parametrize("options, kwargs", CASES)
def test_forward(options, kwargs):
    x = np.random.default_rng(0).standard_normal((10, 5, 4, 3))  # Caffe's test blob is 10×10×20×20
    (y,) = forward(text(options), [x])
    want = reference(x, **kwargs)
    assert y.shape == want.shape
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("shape, options, top_shape", [
    ((4, 6), "", (4, 1, 1)), ((4, 6), "out_max_val: true top_k: 2", (4, 2, 2)),
    ((2, 3, 4, 5), "top_k: 7", (2, 1, 7, 1)), ((2, 3, 4, 5), "axis: 1 top_k: 2", (2, 2, 4, 5))])
def test_top_shapes_as_caffe(shape, options, top_shape):
    (y,) = forward(text(options), [np.random.default_rng(1).standard_normal(shape)])
    assert y.shape == top_shape


def test_ties_go_to_the_larger_index():
    x = np.array([[1.0, 3.0, 3.0, 0.0, 3.0]])
    (y,) = forward(text("top_k: 3 out_max_val: true"), [x])
    np.testing.assert_array_equal(y[0], [[4, 2, 1], [3, 3, 3]])


def test_no_backward():
    layer, _, _ = make_layer(text(), [np.zeros((2, 3))])
    assert not layer.has_backward and layer.batch_independent


@pytest.mark.parametrize("shape, options, message", [
    ((2, 3), "top_k: 4", "top_k 4 is larger than the 3 values"),
    ((2, 3, 4), "axis: 1 top_k: 4", "top_k 4 is larger than the 3 values"),
    ((2, 3), "axis: 2", "argmax_param.axis: axis 2 is out of range"),
])
def test_errors(shape, options, message):
    with pytest.raises(LayerError, match=message):
        forward(text(options), [np.zeros(shape)])


@pytest.mark.parametrize("options, independent", [("", True), ("axis: 1", True), ("axis: 0", False)])
def test_batch_independence(options, independent):
    layer, bottom, _ = make_layer(text(options), [np.zeros((2, 3))])
    assert layer.batch_independent_for(bottom) is independent
