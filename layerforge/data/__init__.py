"""Datasets: IDX/MNIST reader, LMDB store of Caffe Datum records, transformer, pairing."""
from layerforge.data.errors import DatasetError
from layerforge.data.idx import build_mnist_lmdbs, read_idx
from layerforge.data.store import read_lmdb, write_lmdb

__all__ = ["DatasetError", "build_mnist_lmdbs", "read_idx", "read_lmdb", "write_lmdb"]
