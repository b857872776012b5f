"""Datasets: IDX/MNIST reader, LMDB store of Caffe Datum records, transformer, pairing."""


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or inconsistent; the message names the file."""


from layerforge.data.idx import build_mnist_lmdbs, read_idx  # noqa: E402
from layerforge.data.store import read_lmdb, write_lmdb  # noqa: E402

__all__ = ["DatasetError", "build_mnist_lmdbs", "read_idx", "read_lmdb", "write_lmdb"]
