"""Decode: classify encodings by their nearest class centroid; `ClassCentroids` is its base."""
import numpy as np

from layerforge import distributed
from layerforge.blob import Blob
from layerforge.kernels import distance
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer

FLT_MAX = float(np.finfo(np.float32).max)


class ClassCentroids(Layer):
    """Per-class state in non-learnable blobs whose axis 0 is the class (all but the
    iteration counter). It is read through self.blobs[i] on every call, because the test
    net shares these Blobs, and grows in place so that sharing survives.
    """

    has_backward = False
    reshape_every_forward = True   # the classes grow with the labels seen
    iteration_index = None   # index of the one blob that is not per class, if any

    def _setup_state(self, bottom, blob_shapes):
        self.dim = bottom[0].count_range(1)
        self.blobs = [Blob(shape, bottom[0].dtype, learnable=False) for shape in blob_shapes]
        self.ignore = np.array(self.param.decode_param.ignore_label, np.int64)

    def _check_bottoms(self, bottom):
        n, dim = bottom[0].shape[0], bottom[0].count_range(1)
        if dim != self.dim:
            raise self.error(f"encoding dimension changed from {self.dim} to {dim} (bottom[0] {bottom[0].shape})")
        if len(bottom) > 1 and (bottom[1].num_axes == 0 or bottom[1].shape[0] != n):
            raise self.error(f"labels bottom {bottom[1].shape} must have {n} rows, one per encoding")

    def _labels(self, bottom):
        """Column 0 of the labels bottom as integers (Caffe truncates), or None without one."""
        if len(bottom) < 2:
            return None
        return bottom[1].data.reshape(bottom[1].shape[0], -1)[:, 0].astype(np.int64)

    @staticmethod
    def _batch_of_all_ranks(x, labels):
        """In a data-parallel run, every rank learns from the encodings of all ranks, in rank
        order, so the class state stays the same on every rank and equals one process's."""
        world = distributed.active()
        return (x, labels) if world is None else world.gather_rows(x, labels)

    def _ignored(self, labels):
        """Which labels are ignore labels (np.isin is slow, and most nets have none)."""
        return np.isin(labels, self.ignore) if self.ignore.size else np.zeros(labels.shape, bool)

    def learnable_labels(self, labels):
        """Labels with ignored ones set to -1; other negative labels are an error."""
        ignored = self._ignored(labels)
        if np.any(labels[~ignored] < 0):
            raise self.error(f"label {labels[~ignored].min()} is negative and not in decode_param.ignore_label")
        return np.where(ignored, -1, labels)

    def _grow(self, num_classes):
        """Extend every per-class blob to `num_classes` rows in place, keeping existing rows."""
        for i, blob in enumerate(self.blobs):
            if i != self.iteration_index and blob.shape[0] < num_classes:
                old = blob.data.copy()
                blob.reshape((num_classes,) + blob.shape[1:])
                blob.data[:old.shape[0]] = old

    def _mask_unknown(self, out):
        """Distances to classes never seen, and to ignored classes, become FLT_MAX."""
        out[:, self.blobs[1].data == 0] = FLT_MAX
        out[:, self.ignore[(self.ignore >= 0) & (self.ignore < out.shape[1])]] = FLT_MAX

    def load_blobs(self, arrays):
        """Restore saved state whose class count may differ from this layer's (net.copy_from)."""
        arrays = [np.asarray(a) for a in arrays]
        if len(arrays) != len(self.blobs):
            raise self.error(f"weights hold {len(arrays)} blobs for this layer, expected {len(self.blobs)}")
        num_classes = arrays[0].shape[0] if arrays[0].ndim == 2 else None
        for i, (blob, array) in enumerate(zip(self.blobs, arrays)):
            if i == self.iteration_index:
                fits = array.shape == blob.shape
            else:
                fits = (array.ndim == blob.num_axes and array.shape[0] == num_classes
                        and (array.ndim < 2 or array.shape[-1] == self.dim))
            if not fits:
                raise self.error(f"saved blob {i} has shape {array.shape}, which does not fit this layer's "
                                 f"blob {blob.shape} ({self.dim}-D encodings, one row per class)")
        for blob, array in zip(self.blobs, arrays):
            blob.reshape(array.shape)
            blob.data[...] = array


@register_layer("Decode")
class DecodeLayer(ClassCentroids):
    """Distances from each encoding to each class, learned from labelled encodings in TRAIN.

    Bottoms: encodings (N x D) and labels (N, or N x K whose column 0 is the encoding's
    label; optional outside TRAIN). Top 0: N x L squared distances to the L = max label + 1
    classes (the smallest is the prediction); a class with no sample yet, and every
    decode_param.ignore_label, gets the largest float32 value (3.4028235e38). Optional top 1
    (L x D): the centroids once every seen class is ready and the layer has run
    centroid_output_iteration TRAIN passes; zeros before.

    Per item of class c with n earlier samples (M = N * cache_size): the first sample is
    copied, the centroid is the exact running mean while n < M, then an exponential moving
    average with alpha = 1/M; the class is ready once n >= M. Target KNN also keeps each
    class's last M encodings in a ring buffer and reports the mean of the k smallest squared
    distances to them. Ignored labels are not learned and do not add classes.
    enable_centroid_update: false freezes the learned state (e.g. loaded from weights) and
    counts every class as ready.

    State (non-learnable blobs, saved with the weights, shared with the test net, updated
    only in TRAIN): [0] centroids (L x D), [1] samples seen per class (L), [2] ready flags
    (L), [3] TRAIN passes (1), [4] KNN only: encoding cache (L x M x D).
    """

    min_bottom = 1
    max_bottom = 2
    min_top = 1
    max_top = 2
    iteration_index = 3

    def setup(self, bottom, top):
        p = self.param.decode_param
        if p.target == pb.DecodeParameter.PREGEN:
            raise self.error("decode_param.target PREGEN is not supported; use CENTROID or KNN")
        for field in ("cache_size", "k"):
            if getattr(p, field) < 1:
                raise self.error(f"decode_param.{field} must be positive, got {getattr(p, field)}")
        if p.centroid_output_iteration < 0:
            raise self.error(f"decode_param.centroid_output_iteration must not be negative, "
                             f"got {p.centroid_output_iteration}")
        if self.phase == pb.TRAIN and len(bottom) < 2:
            raise self.error("needs a labels bottom in TRAIN to learn the class centroids")
        if p.output_centroids and len(top) < 2:
            raise self.error("decode_param.output_centroids is true but there is no second top")
        self.knn = p.target == pb.DecodeParameter.KNN
        dim = bottom[0].count_range(1)
        shapes = [(0, dim), (0,), (0,), (1,)] + ([(0, 0, dim)] if self.knn else [])
        self._setup_state(bottom, shapes)

    def _learning(self, bottom):
        return self.phase == pb.TRAIN and self.param.decode_param.enable_centroid_update and len(bottom) > 1

    def reshape(self, bottom, top):
        self._check_bottoms(bottom)
        num_classes = self.blobs[0].shape[0]
        if self._learning(bottom) and bottom[0].shape[0]:
            num_classes = max(num_classes, int(self.learnable_labels(self._labels(bottom)).max()) + 1)
        top[0].reshape((bottom[0].shape[0], num_classes))
        if len(top) > 1:
            top[1].reshape((num_classes, self.dim))

    def forward(self, bottom, top):
        p = self.param.decode_param
        n = bottom[0].shape[0]
        x = bottom[0].data.reshape(n, self.dim)
        if self._learning(bottom) and n:
            seen, labels = self._batch_of_all_ranks(x, self.learnable_labels(self._labels(bottom)))
            self._learn(seen, labels, len(seen) * p.cache_size)
        if self.phase == pb.TRAIN:
            self.blobs[3].data[0] += 1
        counts, ready = self.blobs[1].data, self.blobs[2].data
        num_classes = counts.shape[0]
        top[0].reshape((n, num_classes))
        if self.knn:
            distance.knn_distances(x, self.blobs[4].data, counts, p.k, FLT_MAX, top[0].data)
        else:
            distance.sq_distances(x, self.blobs[0].data, top[0].data)
        self._mask_unknown(top[0].data)
        if len(top) > 1:
            top[1].reshape((num_classes, self.dim))
            active = counts > 0
            all_ready = not p.enable_centroid_update or (active.any() and ready[active].all())
            ripe = self.blobs[3].data[0] >= p.centroid_output_iteration
            top[1].data[...] = self.blobs[0].data if all_ready and ripe else 0

    def set_centroids(self, centroids, counts):
        """Replace the learned state by given class centroids (L x D) seen `counts` (L) times,
        e.g. the exact class means of a training set under the final weights
        (`layerforge centroids`); classes with count 0 stay unknown."""
        if self.knn:
            raise self.error("decode_param.target KNN keeps encodings, not centroids; "
                             "centroids can only be set for target CENTROID")
        centroids = np.asarray(centroids)
        if centroids.ndim != 2 or centroids.shape[1] != self.dim or len(counts) != len(centroids):
            raise self.error(f"centroids of shape {centroids.shape} with {len(counts)} counts do not fit "
                             f"encodings of dimension {self.dim}")
        self._grow(len(centroids))
        self.blobs[0].data[...] = 0
        self.blobs[0].data[:len(centroids)] = centroids
        self.blobs[1].data[...] = 0
        self.blobs[1].data[:len(counts)] = counts
        self.blobs[2].data[...] = self.blobs[1].data > 0

    def _learn(self, x, labels, max_count):
        self._grow(int(labels.max()) + 1)
        cache = self.blobs[4] if self.knn else None
        if cache is not None and cache.shape[1] != max_count:
            if cache.shape[1] and self.blobs[1].data.any():
                raise self.error(f"the KNN cache holds {cache.shape[1]} encodings per class but the TRAIN batch "
                                 f"now needs N * cache_size = {max_count}; keep the TRAIN batch size fixed")
            cache.reshape((self.blobs[0].shape[0], max_count, self.dim))
        cache_data = cache.data if cache is not None else np.zeros((0, 0, self.dim), x.dtype)
        distance.accumulate_classes(x, labels, self.blobs[0].data, self.blobs[1].data, cache_data, max_count)
        self.blobs[2].data[...] = self.blobs[1].data >= max_count
