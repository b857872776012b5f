"""TripletMiningLoss: triplet loss over the triplets mined online from a labelled batch."""
import numpy as np

from layerforge.kernels.distance import BATCH_ALL, BATCH_HARD, EPS, SEMI_HARD, mine_triplets, sq_distances
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


@register_layer("TripletMiningLoss")
class TripletMiningLossLayer(Layer):
    """Mean loss of the triplets (anchor, positive, negative) mined from one batch of encodings.

    Bottoms: K >= 1 encoding blobs (N x D each), then the labels: N values when K = 1, or
    N x K with column k labelling bottom k (the Data layer's output_all_labels). All K·N
    encodings form one batch; every one is an anchor. `triplet_loss_param.mining`:
    BATCH_ALL every valid triplet, averaged over those with a non-zero loss; BATCH_HARD
    (default) per anchor the farthest positive and the nearest negative, averaged over the
    anchors that have both (Hermans et al.); SEMI_HARD per anchor-positive pair the nearest
    negative farther than the positive, else the farthest negative, averaged over the pairs
    (FaceNet). A triplet loses max(0, d_ap - d_an + margin), or log(1 + exp(d_ap - d_an))
    with soft_margin. d is the Euclidean distance, squared with squared_distance. Ties
    between equal distances go to the lower index in the batch.
    """

    min_bottom = 2
    exact_num_top = 1
    is_loss = True

    def setup(self, bottom, top):
        param = self.param.triplet_loss_param
        self.margin = float(param.margin)
        self.mining = {pb.TripletLossParameter.BATCH_ALL: BATCH_ALL, pb.TripletLossParameter.BATCH_HARD: BATCH_HARD,
                       pb.TripletLossParameter.SEMI_HARD: SEMI_HARD}[param.mining]
        self.soft = param.soft_margin
        self.squared = param.squared_distance

    def reshape(self, bottom, top):
        encodings, labels = bottom[:-1], bottom[-1]
        n = encodings[0].shape[0]
        for blob in encodings:
            if blob.shape[0] != n or blob.count != encodings[0].count:
                raise self.error("encoding bottoms must have one shape, got "
                                 + ", ".join(str(b.shape) for b in encodings))
        if labels.count != n * len(encodings) or labels.shape[0] != n:
            raise self.error(f"labels of shape {labels.shape} do not fit {len(encodings)} encoding "
                             f"bottom(s) of {n} items: expected {n} x {len(encodings)} labels")
        top[0].reshape(())

    def forward(self, bottom, top):
        encodings, labels = bottom[:-1], bottom[-1]
        n = encodings[0].shape[0]
        x = np.concatenate([b.data.reshape(n, -1) for b in encodings])
        # Row k·N + i of x is item i of bottom k, labelled labels[i, k].
        label = np.rint(labels.data.reshape(n, -1).T.ravel()).astype(np.int64)
        dist = np.empty((len(x), len(x)))
        sq_distances(x, x, dist)
        if not self.squared:
            np.sqrt(dist, out=dist)
        coef = np.zeros_like(dist)
        losses = np.empty(len(x))
        counts = np.empty(len(x), np.int64)
        mine_triplets(dist, label, self.mining, self.margin, self.soft, coef, losses, counts)
        self.count = max(int(counts.sum()), 1)
        # d dist[a, j] / d x_a = chain[a, j] (x_a - x_j), and the same with a and j swapped.
        self.chain = coef * (2.0 if self.squared else 1.0 / np.maximum(dist, EPS))
        self.x = x
        top[0].data[...] = losses.sum() / self.count

    def backward(self, top, propagate_down, bottom):
        s = self.chain + self.chain.T
        s *= float(top[0].diff.reshape(-1)[0]) / self.count
        grad = s.sum(axis=1)[:, None] * self.x - s @ self.x
        n = bottom[0].shape[0]
        for k, (blob, down) in enumerate(zip(bottom[:-1], propagate_down)):
            if down:
                blob.diff[...] = grad[k * n:(k + 1) * n].reshape(blob.shape)
