"""Blob: the data and gradient (diff) arrays of one shape that flow between layers."""
import math

import numpy as np


class Blob:
    """Two C-contiguous arrays of one shape: `data` (values) and `diff` (gradients).

    `learnable` is False for layer state that is saved and shared but never updated
    by a solver (for example the class centroids of a Decode layer).
    """

    def __init__(self, shape=(), dtype=np.float32, learnable=True):
        self.dtype = np.dtype(dtype)
        self.learnable = learnable
        self.data = np.zeros(tuple(int(d) for d in shape), self.dtype)
        self.diff = np.zeros_like(self.data)

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

    def reshape(self, shape):
        """Give the blob a new shape; contents are kept only when the shape is unchanged."""
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"blob shape {shape} has a negative dimension")
        if shape != self.data.shape:
            self.data = np.zeros(shape, self.dtype)
            self.diff = np.zeros(shape, self.dtype)

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
