"""Datasets: IDX/MNIST and Omniglot readers, LMDB/LevelDB stores of Caffe Datum records, transformer, pairing."""
from layerforge.data.errors import DatasetError
from layerforge.data.idx import build_mnist_lmdbs, read_idx
from layerforge.data.store import read_db, read_leveldb, read_lmdb, write_db, write_leveldb, write_lmdb

__all__ = ["DatasetError", "build_mnist_lmdbs", "read_db", "read_idx", "read_leveldb", "read_lmdb",
           "write_db", "write_leveldb", "write_lmdb"]
