"""Input (caller-fed tops shaped by input_param.shape) and Parameter (a learnable blob as the top)."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import check_gradient, make_layer


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


@pytest.mark.parametrize("dims", [(2, -1), (0, 3)])
def test_dimension_below_one_raises(dims):
    shown = ", ".join(map(str, dims))
    with pytest.raises(LayerError, match=rf"layer 'in' \(Input\): input_param.shape \[{shown}\] has a dimension below 1"):
        make_layer(input_text([dims]), [])


PARAMETER = 'name: "p" type: "Parameter" top: "w" parameter_param { shape { dim: 3 dim: 4 } }'


def test_parameter_outputs_its_blob():
    layer, bottom, top = make_layer(PARAMETER, [])
    assert layer.blobs[0].shape == (3, 4) and top[0].shape == (3, 4)
    layer.blobs[0].data[...] = np.arange(12).reshape(3, 4)
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, layer.blobs[0].data)


def test_parameter_gradient():
    def randomize(layer):
        layer.blobs[0].data[...] = np.random.default_rng(0).standard_normal((3, 4))
    assert check_gradient(PARAMETER, [], layer_hook=randomize) == 12


def test_parameter_without_shape_raises():
    with pytest.raises(LayerError, match="parameter_param.shape"):
        make_layer('name: "p" type: "Parameter" top: "w"', [])
