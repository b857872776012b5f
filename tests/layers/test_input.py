"""Input: caller-fed tops shaped by input_param.shape."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import make_layer


def input_text(shapes, tops=("data",)):
    shape_text = " ".join("shape { " + " ".join(f"dim: {d}" for d in s) + " }" for s in shapes)
    return ('name: "in" type: "Input" ' + " ".join(f'top: "{t}"' for t in tops)
            + f" input_param {{ {shape_text} }}")


@pytest.mark.parametrize("shapes, tops, want", [
    ([(2, 3, 4, 5)], ("data",), [(2, 3, 4, 5)]),
    ([(1, 7)], ("a", "b"), [(1, 7), (1, 7)]),  # one shape for every top
    ([(4, 1, 28, 28), (4,)], ("data", "label"), [(4, 1, 28, 28), (4,)]),
    ([()], ("scalar",), [()]),
])
def test_tops_take_the_given_shapes(shapes, tops, want):
    layer, bottom, top = make_layer(input_text(shapes, tops), [])
    assert [t.shape for t in top] == want
    assert not layer.has_backward and layer.blobs == []
    values = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate(want)]
    for blob, value in zip(top, values):
        blob.data[...] = value
    layer.forward(bottom, top)  # leaves the caller's data alone
    for blob, value in zip(top, values):
        np.testing.assert_array_equal(blob.data, value)


def test_caller_may_reshape_the_top():
    layer, bottom, top = make_layer(input_text([(2, 3)]), [])
    top[0].reshape((5, 3))
    layer.reshape(bottom, top)
    assert top[0].shape == (5, 3)


@pytest.mark.parametrize("shapes, tops", [([], ("data",)), ([(1,), (2,)], ("a", "b", "c"))])
def test_wrong_number_of_shapes_raises(shapes, tops):
    with pytest.raises(LayerError, match="input_param.shape"):
        make_layer(input_text(shapes, tops), [])


def test_negative_dimension_raises():
    with pytest.raises(LayerError, match=r"layer 'in' \(Input\): input_param.shape \[2, -1\] has a negative"):
        make_layer(input_text([(2, -1)]), [])
