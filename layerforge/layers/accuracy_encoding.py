"""AccuracyEncoding: nearest-centroid accuracy of encodings, with centroids of its own learned in TRAIN."""
import numpy as np

from layerforge.kernels import distance
from layerforge.layers.decode import FLT_MAX, ClassCentroids
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


@register_layer("AccuracyEncoding")
class AccuracyEncodingLayer(ClassCentroids):
    """Nearest-centroid accuracy of encodings, with centroids of its own learned in TRAIN only.

    Bottoms: encodings (N x D), labels (N, or N x K whose column 0 is used). Each TRAIN pass
    first scores the batch, then learns from it with Decode's rule (decode_param.cache_size);
    TEST and RUN only score. Rows labelled accuracy_param.ignore_label or a
    decode_param.ignore_label are neither scored nor learned. State: [0] centroids (L x D),
    [1] samples seen per class (L).
    """

    exact_num_bottom = 2
    exact_num_top = 1

    def setup(self, bottom, top):
        if self.param.decode_param.cache_size < 1:
            raise self.error(f"decode_param.cache_size must be positive, got {self.param.decode_param.cache_size}")
        acc = self.param.accuracy_param
        if acc.top_k != 1:
            raise self.error(f"accuracy_param.top_k {acc.top_k} is not supported; use 1")
        self._setup_state(bottom, [(0, bottom[0].count_range(1)), (0,)])
        if acc.HasField("ignore_label"):
            self.ignore = np.append(self.ignore, acc.ignore_label)

    def reshape(self, bottom, top):
        self._check_bottoms(bottom)
        top[0].reshape(())

    def forward(self, bottom, top):
        n = bottom[0].shape[0]
        x = bottom[0].data.reshape(n, self.dim)
        labels = self._labels(bottom)
        keep = ~self._ignored(labels)
        dist = np.empty((n, self.blobs[0].shape[0]), x.dtype)
        distance.sq_distances(x, self.blobs[0].data, dist)
        self._mask_unknown(dist)
        if dist.shape[1] and keep.any():
            correct = (dist.argmin(axis=1) == labels) & (dist.min(axis=1) < FLT_MAX)
            top[0].data[...] = correct[keep].mean()
        else:
            top[0].data[...] = 0
        if self.phase == pb.TRAIN and n:
            seen, labels = self._batch_of_all_ranks(x, self.learnable_labels(labels))
            self._grow(int(labels.max()) + 1)
            no_cache = np.zeros((0, 0, self.dim), x.dtype)
            distance.accumulate_classes(seen, labels, self.blobs[0].data, self.blobs[1].data, no_cache,
                                        len(seen) * self.param.decode_param.cache_size)
