"""ContrastiveLoss: pull encodings of similar pairs together, push dissimilar ones past a margin."""
import numpy as np

from layerforge.kernels import distance
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


@register_layer("ContrastiveLoss")
class ContrastiveLossLayer(Layer):
    """Loss = 1/(2N) sum_i [ s*y_i*d_i^2 + (1-y_i)*max(m - d_i, 0)^2 ], d_i = ||a_i - b_i||.

    Bottoms: a (N x D), b (N x D), similarity: N values (nonzero = similar) or N x K labels
    (similar when all K are equal, as MyCaffe's pair Data layer gives them). `legacy_version`
    uses max(m - d^2, 0) for dissimilar pairs. With `output_matches`, top 1 (N x 1) is 1 where
    the distance classifies the pair correctly (similar: d <= m, dissimilar: d > m), else 0.
    The similarity bottom gets no gradient. loss_param.normalization is ignored, as in Caffe
    and MyCaffe: the loss is always divided by 2N.
    """

    exact_num_bottom = 3
    min_top = 1
    max_top = 2
    is_loss = True

    def setup(self, bottom, top):
        p = self.param.contrastive_loss_param
        if p.distance_calculation != pb.ContrastiveLossParameter.EUCLIDEAN:
            raise self.error("contrastive_loss_param.distance_calculation "
                             f"{pb.ContrastiveLossParameter.DistanceCalculation.Name(p.distance_calculation)}"
                             " is not supported; use EUCLIDEAN")
        if p.centroid_learning != pb.ContrastiveLossParameter.NONE:
            raise self.error("contrastive_loss_param.centroid_learning "
                             f"{pb.ContrastiveLossParameter.CentroidLearning.Name(p.centroid_learning)}"
                             " is not supported; use NONE")
        if len(top) == 2 and not p.output_matches:
            raise self.error("has a second top but contrastive_loss_param.output_matches is false")
        self.margin = float(p.margin)
        self.scale = float(p.matching_distance_scale)
        self.legacy = bool(p.legacy_version)

    def reshape(self, bottom, top):
        a, b, sim = bottom
        n = a.shape[0]
        if a.shape != b.shape:
            raise self.error(f"bottoms a {a.shape} and b {b.shape} must have the same shape")
        if sim.num_axes == 0 or sim.shape[0] != n:
            raise self.error(f"similarity bottom {sim.shape} must have {n} rows, one per pair")
        top[0].reshape(())
        if len(top) == 2:
            top[1].reshape((n, 1))
        self.dist_sq = np.zeros(n)

    def _similar(self, sim):
        labels = sim.data.reshape(sim.shape[0], -1)
        if labels.shape[1] == 1:
            return labels[:, 0].astype(np.int64) != 0
        return np.all(labels == labels[:, :1], axis=1)

    def forward(self, bottom, top):
        a, b, sim = bottom
        self.similar = self._similar(sim)
        n = a.shape[0]
        total = distance.contrastive_forward(a.data.reshape(n, -1), b.data.reshape(n, -1), self.similar,
                                             self.margin, self.scale, self.legacy, self.dist_sq)
        top[0].data[...] = total / (2.0 * n)
        if len(top) == 2:
            far = np.sqrt(self.dist_sq) > self.margin
            top[1].data[:, 0] = np.where(self.similar, ~far, far)

    def backward(self, top, propagate_down, bottom):
        a, b = bottom[0], bottom[1]
        if not (propagate_down[0] or propagate_down[1]):
            return
        n = a.shape[0]
        coef = float(top[0].diff.reshape(-1)[0]) / (2.0 * n)
        a2, b2 = a.data.reshape(n, -1), b.data.reshape(n, -1)
        grad = np.empty_like(a2)
        distance.contrastive_backward(a2, b2, self.similar, self.dist_sq, self.margin, self.scale,
                                      self.legacy, coef, grad)
        if propagate_down[0]:
            a.diff[...] = grad.reshape(a.shape)
        if propagate_down[1]:
            b.diff[...] = -grad.reshape(b.shape)
