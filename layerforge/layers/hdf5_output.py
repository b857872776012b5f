"""HDF5Output: write the data and label bottoms to an HDF5 file, as Caffe's HDF5OutputLayer does."""
import os

import numpy as np

from layerforge.layer import Layer
from layerforge.registry import register_layer


@register_layer("HDF5Output")
class HDF5OutputLayer(Layer):
    """Bottoms: data, label. The file `file_name` is created (replacing any old one) at setup
    with datasets `data` and `label`; every forward appends its batch to both, so after k
    forward passes they hold k batches (Caffe writes the datasets once per file)."""

    exact_num_bottom = 2
    exact_num_top = 0
    has_backward = False

    def setup(self, bottom, top):
        import h5py
        self._path = os.path.expanduser(self.param.hdf5_output_param.file_name)
        if not self._path:
            raise self.error("hdf5_output_param.file_name is required")
        try:
            with h5py.File(self._path, "w") as handle:
                for name, blob in zip(("data", "label"), bottom):
                    handle.create_dataset(name, (0,) + blob.shape[1:], blob.data.dtype,
                                          maxshape=(None,) + blob.shape[1:], chunks=True)
        except OSError as err:
            raise self.error(f"hdf5_output_param.file_name {self._path!r}: cannot create it: {err}") from None

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        import h5py
        with h5py.File(self._path, "a") as handle:
            for name, blob in zip(("data", "label"), bottom):
                dataset = handle[name]
                if dataset.shape[1:] != blob.shape[1:]:
                    raise self.error(f"bottom '{name}' rows are {blob.shape[1:]}, the file's are {dataset.shape[1:]}")
                start = len(dataset)
                dataset.resize(start + len(blob.data), axis=0)
                dataset[start:] = np.asarray(blob.data, dataset.dtype)
