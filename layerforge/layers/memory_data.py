"""MemoryData: batches from numpy arrays the caller hands over (Caffe's MemoryDataLayer)."""
import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("MemoryData")
class MemoryDataLayer(Layer):
    """Batches from numpy arrays given with set_input_arrays(data, labels), wrapping around."""

    exact_num_bottom = 0
    min_top = 1
    max_top = 2
    has_backward = False

    def setup(self, bottom, top):
        mp = self.param.memory_data_param
        self._shape = (mp.batch_size, mp.channels, mp.height, mp.width)
        if min(self._shape) < 1:
            raise self.error("memory_data_param: batch_size, channels, height and width must all be "
                             f"at least 1, got {mp.batch_size}, {mp.channels}, {mp.height}, {mp.width}")
        self._data = self._labels = None
        self._cursor = 0

    def set_input_arrays(self, data, labels):
        """Feed M records: data M×C×H×W (or anything of that size per record) and M labels."""
        data = np.asarray(data)
        labels = np.asarray(labels).ravel()
        if data.size != len(data) * np.prod(self._shape[1:]) or len(data) == 0:
            raise self.error(f"set_input_arrays: data of shape {data.shape} does not hold records of "
                             f"{'x'.join(map(str, self._shape[1:]))} (memory_data_param)")
        if len(labels) != len(data):
            raise self.error(f"set_input_arrays: {len(data)} records but {len(labels)} labels")
        self._data = data.reshape((len(data),) + self._shape[1:])
        self._labels = labels
        self._cursor = 0

    def reshape(self, bottom, top):
        top[0].reshape(self._shape)
        if len(top) > 1:
            top[1].reshape(self._shape[:1])

    def forward(self, bottom, top):
        if self._data is None:
            raise self.error("no input: call set_input_arrays(data, labels) before forward")
        rows = (self._cursor + np.arange(self._shape[0])) % len(self._data)
        self._cursor = int(rows[-1] + 1) % len(self._data)
        top[0].data[...] = self._data[rows]
        if len(top) > 1:
            top[1].data[...] = self._labels[rows]

    def get_state(self):
        return {"cursor": self._cursor}

    def set_state(self, state):
        self._cursor = int(state["cursor"])
