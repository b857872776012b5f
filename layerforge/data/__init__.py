"""Datasets: IDX/MNIST reader, LMDB/LevelDB stores of Caffe Datum records, transformer, pairing."""


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or inconsistent; the message names the file."""


from layerforge.data.idx import build_mnist_lmdbs, read_idx  # noqa: E402
from layerforge.data.store import read_db, read_leveldb, read_lmdb, write_db, write_leveldb, write_lmdb  # noqa: E402

__all__ = ["DatasetError", "build_mnist_lmdbs", "read_db", "read_idx", "read_leveldb", "read_lmdb",
           "write_db", "write_leveldb", "write_lmdb"]
