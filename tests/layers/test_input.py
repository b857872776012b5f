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


@pytest.mark.parametrize("dims", [(2, -1), (0, 3)])
def test_dimension_below_one_raises(dims):
    shown = ", ".join(map(str, dims))
    with pytest.raises(LayerError, match=rf"layer 'in' \(Input\): input_param.shape \[{shown}\] has a dimension below 1"):
        make_layer(input_text([dims]), [])


def test_transform_param_applies_to_arrays_fed_through_the_net():
    from layerforge.io import parse_text
    from layerforge.net import Net
    from layerforge.proto import layerforge_pb2 as pb

    net = Net(parse_text(input_text([(1, 1, 2, 2), (1,)], ("data", "label")).join(
        ["layer { ", " transform_param { scale: 0.5 mean_value: 10 crop_size: 2 } }"]), pb.NetParameter()),
        pb.RUN)
    raw = np.arange(2 * 9, dtype=np.uint8).reshape(2, 1, 3, 3) + 20
    out = net.forward(data=raw, label=[3, 4])
    np.testing.assert_allclose(out["data"], (raw[:, :, :2, :2].astype(np.float32) - 10) * 0.5)
    np.testing.assert_array_equal(out["label"], [3, 4])          # only the first top is transformed
    with pytest.raises(LayerError, match=r"layer 'in' \(Input\): transform_param needs N×C×H×W images"):
        net.forward(data=np.zeros((2, 9)))
    with pytest.raises(LayerError, match=r"layer 'in' \(Input\): transform_param.crop_size 2 is larger"):
        net.forward(data=np.zeros((2, 1, 1, 1)))

