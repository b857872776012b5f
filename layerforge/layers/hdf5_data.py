"""HDF5Data: batches of rows from .h5 files, one dataset per top, as Caffe's HDF5DataLayer reads them."""
import os

import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


def read_file_list(path):
    """The .h5 file names listed (whitespace-separated, as Caffe reads them) in a text file."""
    try:
        with open(path, encoding="utf-8") as handle:
            names = handle.read().split()
    except OSError as err:
        raise ValueError(f"cannot read the list of HDF5 files: {err}") from None
    if not names:
        raise ValueError("lists no HDF5 files")
    return names


@register_layer("HDF5Data")
class HDF5DataLayer(Layer):
    """Each top is the dataset of that name in the current file; a batch takes `batch_size`
    rows, moving on to the next listed file (and back to the first) when a file runs out,
    so batches wrap across files. With `shuffle`, the file order is shuffled at setup and at
    every wrap, and the rows of each file every time it is loaded. One file is in memory at
    a time; integer datasets are converted to the net's float type.
    """

    exact_num_bottom = 0
    min_top = 1
    has_backward = False

    def setup(self, bottom, top):
        hp = self.param.hdf5_data_param
        if hp.batch_size < 1:
            raise self.error(f"hdf5_data_param.batch_size must be at least 1, got {hp.batch_size}")
        try:
            self._files = read_file_list(os.path.expanduser(hp.source))
        except ValueError as err:
            raise self.error(f"hdf5_data_param.source {hp.source!r}: {err}") from None
        self._rng = np.random.default_rng(int(self.rng.integers(2 ** 63)))
        self._file_order = self._permutation(len(self._files))
        self._file = 0
        self._load()

    def _permutation(self, count):
        return self._rng.permutation(count) if self.param.hdf5_data_param.shuffle else np.arange(count)

    def _load(self):
        import h5py
        path = self._files[self._file_order[self._file]]
        try:
            with h5py.File(path, "r") as handle:
                arrays = []
                for name in self.param.top:
                    if name not in handle:
                        raise self.error(f"{path}: no dataset '{name}' for top '{name}' "
                                         f"(the file holds {', '.join(sorted(handle)) or 'nothing'})")
                    dataset = handle[name]
                    if dataset.dtype.kind not in "fiub" or dataset.ndim < 1:
                        raise self.error(f"{path}: dataset '{name}' must be numeric with at least one "
                                         f"axis, got {dataset.dtype} of shape {dataset.shape}")
                    arrays.append(dataset[()])
        except OSError as err:
            raise self.error(f"{path}: cannot read the HDF5 file: {err}") from None
        rows = {len(a) for a in arrays}
        if len(rows) != 1 or 0 in rows:
            raise self.error(f"{path}: the datasets {list(self.param.top)} must have one non-zero number of "
                             f"rows, got {[len(a) for a in arrays]}")
        if hasattr(self, "_arrays") and [a.shape[1:] for a in arrays] != [a.shape[1:] for a in self._arrays]:
            raise self.error(f"{path}: rows of shapes {[a.shape[1:] for a in arrays]} differ from the "
                             f"first file's {[a.shape[1:] for a in self._arrays]}")
        self._arrays = arrays
        self._rows = self._permutation(len(arrays[0]))
        self._row = 0

    def reshape(self, bottom, top):
        for blob, array in zip(top, self._arrays):
            blob.reshape((self.param.hdf5_data_param.batch_size,) + array.shape[1:])

    def forward(self, bottom, top):
        for i in range(self.param.hdf5_data_param.batch_size):
            row = self._rows[self._row]
            for blob, array in zip(top, self._arrays):
                blob.data[i] = array[row]
            self._row += 1
            if self._row == len(self._rows):
                self._next_file()

    def _next_file(self):
        if len(self._files) > 1:
            self._file += 1
            if self._file == len(self._files):
                self._file = 0
                self._file_order = self._permutation(len(self._files))
            self._load()
        else:
            self._row = 0
            self._rows = self._permutation(len(self._rows))
