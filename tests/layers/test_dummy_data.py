"""DummyData: tops filled by data_filler; constant fillers fill once, others refill at every forward."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import make_layer


def dummy_text(options, tops=("data",)):
    return ('name: "d" type: "DummyData" ' + " ".join(f'top: "{t}"' for t in tops)
            + f" dummy_data_param {{ {options} }}")


def test_default_filler_is_zero():
    layer, bottom, top = make_layer(dummy_text("shape { dim: 2 dim: 3 }"), [])
    layer.forward(bottom, top)
    assert top[0].shape == (2, 3)
    np.testing.assert_array_equal(top[0].data, 0)
    assert not layer.has_backward


@pytest.mark.parametrize("options, tops, want", [
    ("shape { dim: 2 dim: 3 }", ("a", "b"), [(2, 3), (2, 3)]),
    ("shape { dim: 2 } shape { dim: 4 dim: 1 }", ("a", "b"), [(2,), (4, 1)]),
    ("num: 5 channels: 1 height: 2 width: 3", ("a",), [(5, 1, 2, 3)]),
    ("num: 5 num: 6 channels: 1 height: 2 width: 3", ("a", "b"), [(5, 1, 2, 3), (6, 1, 2, 3)]),
])
def test_shapes(options, tops, want):
    _, _, top = make_layer(dummy_text(options, tops), [])
    assert [t.shape for t in top] == want


def test_one_filler_per_top():
    text = dummy_text('shape { dim: 3 dim: 4 } data_filler { type: "constant" value: 7 } '
                      'data_filler { type: "uniform" min: 2 max: 3 }', tops=("a", "b"))
    layer, bottom, top = make_layer(text, [])
    layer.forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, 7)
    assert np.all((top[1].data >= 2) & (top[1].data <= 3))


def test_constant_fills_once_and_random_refills_every_forward():
    text = dummy_text('shape { dim: 50 } data_filler { type: "constant" value: 1.5 } '
                      'data_filler { type: "gaussian" }', tops=("const", "noise"))
    layer, bottom, top = make_layer(text, [])
    layer.forward(bottom, top)
    first = top[1].data.copy()
    top[0].data[0] = -1  # as Caffe: a constant top is not rewritten
    layer.forward(bottom, top)
    assert top[0].data[0] == -1 and np.all(top[0].data[1:] == 1.5)
    assert not np.array_equal(top[1].data, first)


def test_random_fill_follows_the_seed():
    text = dummy_text('shape { dim: 4 dim: 5 } data_filler { type: "gaussian" }')
    runs = []
    for seed in (11, 11, 12):
        layer, bottom, top = make_layer(text, [], seed=seed)
        layer.forward(bottom, top)
        runs.append(top[0].data.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("options, tops, field", [
    ("", ("a",), "shape"),
    ("shape { dim: 2 } num: 1 channels: 1 height: 1 width: 1", ("a",), "not both"),
    ("num: 1 channels: 1 height: 1", ("a",), "width"),
    ("shape { dim: 2 } shape { dim: 3 }", ("a", "b", "c"), "dummy_data_param.shape"),
    ("num: 1 num: 2 channels: 1 height: 1 width: 1", ("a", "b", "c"), "dummy_data_param.num"),
    ('shape { dim: 2 } data_filler { } data_filler { }', ("a", "b", "c"), "data_filler"),
])
def test_bad_configs_raise(options, tops, field):
    with pytest.raises(LayerError, match=field):
        make_layer(dummy_text(options, tops), [])
