"""Triplet packing: each item is (anchor, positive of the anchor's class, negative of another class).

Anchors follow PairSampler's record order (sequential with wrap-around, or a seeded
permutation per epoch; rand_skip), so an epoch visits every record once as an anchor. The
positive is drawn uniformly among the other records of the anchor's class (the anchor itself
when its class has a single record). The negative's class is drawn uniformly among the other
classes, then a record uniformly within it. With `groups` (class label -> group index, as
`data.groups.class_groups` returns), the negative's class is drawn among the other classes of
the anchor's group; an anchor whose group has no other class, or whose class is in no group,
falls back to all other classes. Every draw comes from the sampler's rng, so get_state() and
set_state() resume the sequence exactly.
"""
import numpy as np

from layerforge.data import DatasetError
from layerforge.data.pairing import PairSampler


class TripletSampler(PairSampler):
    def __init__(self, labels, batch_size, shuffle=False, rand_skip=0, rng=None, groups=None):
        super().__init__(labels, batch_size, images_per_blob=3, balance_matches=False,
                         shuffle=shuffle, rand_skip=rand_skip, rng=rng)
        if len(self.counts) < 2:
            raise DatasetError("data_param.triplets needs at least two classes in the data, found one")
        self.same_group = groups is not None
        if self.same_group:
            self._set_groups(np.unique(labels), groups)

    def _negative(self, first):
        cls = self.class_of[first]
        u = self.rng.random(len(first))
        other = np.floor(u * (len(self.counts) - 1)).astype(np.int64)
        other += other >= cls
        if self.same_group:
            size = self.group_size[cls]
            within = np.floor(u * (size - 1)).astype(np.int64)
            within += within >= self.group_rank[cls]
            peer = self.group_members[self.group_start[cls] + np.minimum(within, size - 1)]
            other = np.where(size > 1, peer, other)
        r = np.floor(self.rng.random(len(first)) * self.counts[other]).astype(np.int64)
        return self.by_class[self.starts[other] + r]

    def next_indices(self):
        """Record indices of the next batch, batch_size × 3: anchor, positive, negative."""
        first = self._first(self.batch_size)
        return np.stack([first, self._same_class(first), self._negative(first)], axis=1)
