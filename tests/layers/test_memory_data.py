"""MemoryData layer: batches of numpy arrays fed from Python, wrapping around."""
import numpy as np
import pytest

from layerforge.layer import LayerError
from layerforge.testing import make_layer


def memory_layer(batch_size, shape, tops=2):
    c, h, w = shape
    text = (f'name: "mem" type: "MemoryData" top: "data" top: "label" memory_data_param '
            f'{{ batch_size: {batch_size} channels: {c} height: {h} width: {w} }}')
    return make_layer(text, [], "TRAIN", 0, np.float32, tops)


@pytest.mark.parametrize("batch_size, records", [(1, 1), (3, 7), (4, 4), (5, 2)])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 4)])
def test_batches_wrap_around(batch_size, records, shape):
    layer, _, top = memory_layer(batch_size, shape)
    rng = np.random.default_rng(0)
    data = rng.standard_normal((records,) + shape)
    labels = rng.integers(0, 10, records)
    layer.set_input_arrays(data.reshape(records, -1), labels)  # any layout of the right size per record
    assert top[0].shape == (batch_size,) + shape and top[1].shape == (batch_size,)
    for step in range(4):
        rows = (step * batch_size + np.arange(batch_size)) % records
        layer.forward([], top)
        np.testing.assert_array_equal(top[0].data, data[rows].astype(np.float32))
        np.testing.assert_array_equal(top[1].data, labels[rows])


def test_state_and_new_input_restart():
    layer, _, top = memory_layer(2, (1, 1, 1), tops=1)
    layer.set_input_arrays(np.arange(5.0), np.zeros(5))
    layer.forward([], top)
    state = layer.get_state()
    layer.forward([], top)
    np.testing.assert_array_equal(top[0].data.ravel(), [2, 3])
    layer.set_state(state)
    layer.forward([], top)
    np.testing.assert_array_equal(top[0].data.ravel(), [2, 3])
    layer.set_input_arrays(np.arange(10.0, 15.0), np.zeros(5))
    layer.forward([], top)
    np.testing.assert_array_equal(top[0].data.ravel(), [10, 11])


def test_errors():
    layer, _, top = memory_layer(2, (1, 2, 2))
    with pytest.raises(LayerError, match="'mem' \\(MemoryData\\): no input: call set_input_arrays"):
        layer.forward([], top)
    with pytest.raises(LayerError, match=r"data of shape \(3, 5\) does not hold records of 1x2x2"):
        layer.set_input_arrays(np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(LayerError, match="3 records but 2 labels"):
        layer.set_input_arrays(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(LayerError, match="must all be at least 1, got 2, 0, 2, 2"):
        memory_layer(2, (0, 2, 2))
