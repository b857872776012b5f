"""Blob: the data and gradient (diff) arrays of one shape that flow between layers."""
import math
import os

import numpy as np


class BlobSizeError(ValueError):
    """A blob of this shape cannot be allocated."""


def _memory_bytes():
    """The machine's physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _allocate(shape, dtype):
    """data and diff arrays of `shape`; sizes beyond the machine's memory are a BlobSizeError
    (a ValueError) naming the bytes asked for (numpy's zeros would promise them and fail when touched)."""
    asked = 2 * math.prod(shape) * dtype.itemsize
    memory = _memory_bytes()
    if memory is not None and asked > memory:
        raise BlobSizeError(f"a blob of shape {shape} ({dtype.name}, with its diff) needs {asked:,} bytes, "
                            f"more than this machine's {memory:,} bytes of memory")
    try:
        return np.zeros(shape, dtype), np.zeros(shape, dtype)
    except (MemoryError, ValueError) as err:
        raise BlobSizeError(f"a blob of shape {shape} ({dtype.name}, with its diff) needs {asked:,} bytes, "
                            f"which cannot be allocated: {err}") from None


class Blob:
    """Two C-contiguous arrays of one shape: `data` (values) and `diff` (gradients).

    `learnable` is False for layer state that is saved and shared but never updated
    by a solver (for example the class centroids of a Decode layer).
    """

    def __init__(self, shape=(), dtype=np.float32, learnable=True):
        self.dtype = np.dtype(dtype)
        self.learnable = learnable
        self.data, self.diff = _allocate(tuple(int(d) for d in shape), self.dtype)

    @classmethod
    def from_array(cls, array, dtype=None, learnable=True):
        array = np.asarray(array)
        blob = cls(array.shape, dtype or array.dtype, learnable)
        blob.data[...] = array
        return blob

    @property
    def shape(self):
        return self.data.shape

    @property
    def count(self):
        return self.data.size

    @property
    def num_axes(self):
        return self.data.ndim

    def _legacy_axis(self, index):
        """Caffe's LegacyShape: axis `index` of a blob of at most 4 axes, 1 beyond its last."""
        if self.num_axes > 4:
            raise ValueError(f"num/channels/height/width apply to blobs of at most 4 axes; this one "
                             f"has shape {self.shape}")
        return self.shape[index] if index < self.num_axes else 1

    num = property(lambda self: self._legacy_axis(0), doc="Axis 0 (Caffe's legacy accessor).")
    channels = property(lambda self: self._legacy_axis(1), doc="Axis 1 (Caffe's legacy accessor).")
    height = property(lambda self: self._legacy_axis(2), doc="Axis 2 (Caffe's legacy accessor).")
    width = property(lambda self: self._legacy_axis(3), doc="Axis 3 (Caffe's legacy accessor).")

    def reshape(self, *shape):
        """Give the blob a new shape, as `reshape((2, 3))` or, as pycaffe, `reshape(2, 3)`;
        `reshape()` makes a scalar. Contents are kept only when the shape is unchanged."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"blob shape {shape} has a negative dimension")
        if shape != self.data.shape:
            self.data, self.diff = _allocate(shape, self.dtype)

    def reshape_like(self, other):
        self.reshape(other.shape)

    def canonical_axis(self, axis):
        """Resolve a possibly negative axis index against this blob, as Caffe does."""
        if not -self.num_axes <= axis < max(self.num_axes, 1):
            raise ValueError(f"axis {axis} is out of range for a blob of shape {self.shape}")
        return axis % max(self.num_axes, 1)

    def count_range(self, start, end=None):
        return math.prod(self.shape[start:end])

    def __repr__(self):
        return f"Blob(shape={self.shape}, dtype={self.dtype.name})"


class BlobVec(list):
    """A layer's `blobs`: a list of Blobs that can also grow as pycaffe's does,
    `self.blobs.add_blob(2, 3)` appending a zero-filled float32 Blob of that shape."""

    def add_blob(self, *shape):
        self.append(Blob(shape))
        return self[-1]
