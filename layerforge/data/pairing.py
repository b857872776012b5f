"""Which records make up each item of a batch: record order plus MyCaffe-style pairing.

Each item is K = images_per_blob record indices. The first follows the record order:
sequential with wrap-around, or (shuffle) a fresh seeded permutation every epoch. The
K-1 partners are drawn with the sampler's rng. With balance_matches, items alternate
between "all partners of the first image's class" and "partners of other classes",
and the alternation carries over from one batch to the next. A same-class partner is
never the first image itself unless its class has a single record; a different class
is chosen uniformly among the other classes, then a record uniformly within it.

With class groups (Omniglot's alphabets, from the dataset's labels.txt) and
within_group p > 0, each "different" partner comes with probability p from another
class of the first image's own group — the hard case of telling apart characters of one
alphabet — and from any other class otherwise (also when the group has a single class).
"""
import numpy as np

from layerforge.data import DatasetError


class PairSampler:
    def __init__(self, labels, batch_size, images_per_blob=1, balance_matches=True,
                 shuffle=False, rand_skip=0, rng=None, groups=None, within_group=0.0):
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.batch_size = batch_size
        self.images_per_blob = images_per_blob
        self.balance = balance_matches and images_per_blob > 1
        self.shuffle = shuffle
        self.num = len(labels)
        self.class_of = np.unique(labels, return_inverse=True)[1].ravel()
        self.counts = np.bincount(self.class_of)
        if self.balance and len(self.counts) < 2:
            raise DatasetError("data_param.balance_matches needs at least two classes in the data, "
                               "found one; set balance_matches: false")
        self.starts = np.concatenate(([0], np.cumsum(self.counts)[:-1]))
        self.by_class = np.argsort(self.class_of, kind="stable")
        self.rank = np.empty(self.num, np.int64)  # position of each record within its class
        self.rank[self.by_class] = np.arange(self.num) - self.starts[self.class_of[self.by_class]]
        self.within_group = within_group if self.balance else 0.0
        if self.within_group:
            self._set_groups(np.unique(labels), groups)
        self.cursor = int(self.rng.integers(rand_skip)) if rand_skip else 0
        self.match_next = True
        self.epoch_seed = None
        self._perm = None
        if shuffle:
            self._new_epoch()

    def _set_groups(self, classes, groups):
        """Per class: its group's classes (group_members[group_start:+group_size]) and its
        position there; a class outside any group is a group of its own."""
        table = np.asarray(groups if groups is not None else [], np.int64)
        group = np.full(len(classes), -1, np.int64)
        inside = (classes >= 0) & (classes < len(table))
        group[inside] = table[classes[inside]]
        lone = group < 0
        group[lone] = group.max(initial=-1) + 1 + np.arange(lone.sum())
        self.group_members = np.argsort(group, kind="stable")
        _, first, size = np.unique(group[self.group_members], return_index=True, return_counts=True)
        inverse = np.unique(group, return_inverse=True)[1].ravel()
        self.group_start, self.group_size = first[inverse], size[inverse]
        self.group_rank = np.empty(len(classes), np.int64)
        self.group_rank[self.group_members] = np.arange(len(classes)) - self.group_start[self.group_members]

    def _new_epoch(self):
        self.epoch_seed = int(self.rng.integers(2 ** 63))
        self._perm = np.random.default_rng(self.epoch_seed).permutation(self.num)

    def get_state(self):
        return {"cursor": self.cursor, "match_next": self.match_next,
                "epoch_seed": self.epoch_seed, "rng": self.rng.bit_generator.state}

    def set_state(self, state):
        self.cursor = int(state["cursor"])
        self.match_next = bool(state["match_next"])
        self.rng.bit_generator.state = state["rng"]
        self.epoch_seed = state["epoch_seed"]
        if self.shuffle:
            self._perm = np.random.default_rng(self.epoch_seed).permutation(self.num)

    def _first(self, n):
        chunks = []
        while n:
            take = min(n, self.num - self.cursor)
            span = slice(self.cursor, self.cursor + take)
            chunks.append(self._perm[span] if self.shuffle else np.arange(self.num)[span])
            self.cursor += take
            n -= take
            if self.cursor == self.num:
                self.cursor = 0
                if self.shuffle:
                    self._new_epoch()
        return np.concatenate(chunks)

    def _same_class(self, first):
        cls = self.class_of[first]
        r = np.floor(self.rng.random(len(first)) * (self.counts[cls] - 1)).astype(np.int64)
        r += (r >= self.rank[first]) & (self.counts[cls] > 1)
        return self.by_class[self.starts[cls] + r]

    def _other_class(self, first):
        cls = self.class_of[first]
        other = np.floor(self.rng.random(len(first)) * (len(self.counts) - 1)).astype(np.int64)
        other += other >= cls
        if self.within_group:
            within = (self.rng.random(len(first)) < self.within_group) & (self.group_size[cls] > 1)
            pick = np.floor(self.rng.random(len(first)) * (self.group_size[cls] - 1)).astype(np.int64)
            pick += (pick >= self.group_rank[cls]) & (self.group_size[cls] > 1)
            other = np.where(within, self.group_members[self.group_start[cls] + pick], other)
        r = np.floor(self.rng.random(len(first)) * self.counts[other]).astype(np.int64)
        return self.by_class[self.starts[other] + r]

    def next_indices(self):
        """Record indices of the next batch, batch_size × images_per_blob."""
        n, k = self.batch_size, self.images_per_blob
        first = self._first(n)
        items = [first]
        if k > 1 and self.balance:
            match = (np.arange(n) % 2 == 0) == self.match_next
            if n % 2:
                self.match_next = not self.match_next
            for _ in range(k - 1):
                items.append(np.where(match, self._same_class(first), self._other_class(first)))
        elif k > 1:
            items += list(self.rng.integers(0, self.num, (k - 1, n)))
        return np.stack(items, axis=1)
