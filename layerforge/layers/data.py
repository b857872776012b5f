"""Data: batches of Datum records from an LMDB or LevelDB, transformed, with MyCaffe's pairing."""
import os
import weakref

import numpy as np

from layerforge import distributed
from layerforge.data import DatasetError
from layerforge.data.groups import LABELS_FILE, class_groups
from layerforge.data.pairing import PairSampler
from layerforge.data.prefetch import BatchSource, Prefetcher
from layerforge.data.store import read_db
from layerforge.data.transform import DataTransformer, with_legacy_fields
from layerforge.data.triplets import TripletSampler
from layerforge.layer import Layer
from layerforge.proto import layerforge_pb2 as pb
from layerforge.registry import register_layer


@register_layer("Data")
class DataLayer(Layer):
    """Batches from an LMDB or a LevelDB (data_param.backend; without it LEVELDB, Caffe's
    default), loaded into memory at setup; tops: data and (optional) label.

    images_per_blob K stacks K images on the channel axis (N×K·C×H×W). The label top is
    N labels (K = 1), N×K labels (output_all_labels) or N similarities (1 = all K images
    share a class). Record order is sequential, or a seeded permutation per epoch when
    `shuffle` or an explicitly set `enable_random_selection: true` asks for it. Batches
    are made ahead in a thread (`prefetch` of them); get_state()/set_state() save and
    restore the position and RNG state as of the batches consumed. In a data-parallel run
    batch_size is per rank: each rank keeps its slice of the batch of all ranks.
    `triplets: true` packs (anchor, positive, negative) instead (data.triplets.TripletSampler),
    labels N×3.
    """

    exact_num_bottom = 0
    min_top = 1
    max_top = 2
    has_backward = False

    def setup(self, bottom, top):
        dp = self.param.data_param
        if dp.backend == pb.DataParameter.IMAGEDB:
            raise self.error(f"data_param.backend IMAGEDB: MyCaffe's IMAGEDB is not available in layerforge; build an "
                             f"LMDB with `layerforge data mnist --out DIR` (or `layerforge data images`) "
                             f"and set data_param {{ source: \"DIR/mnist_train_lmdb\" backend: LMDB }}")
        if dp.batch_size < 1:
            raise self.error(f"data_param.batch_size must be at least 1, got {dp.batch_size}")
        if not 0 <= dp.different_within_group <= 1:
            raise self.error(f"data_param.different_within_group must be in [0, 1], "
                             f"got {dp.different_within_group:g}")
        if dp.images_per_blob < 1:
            raise self.error(f"data_param.images_per_blob must be at least 1, got {dp.images_per_blob}")
        if dp.triplet_negative_same_group and not dp.triplets:
            raise self.error("data_param.triplet_negative_same_group applies only with triplets: true")
        tp = with_legacy_fields(self.param.transform_param, dp)
        shuffle = dp.shuffle or (dp.HasField("enable_random_selection") and dp.enable_random_selection)
        rng = np.random.default_rng(int(self.rng.integers(2 ** 63)))  # private: the thread draws from it
        try:
            backend = "leveldb" if dp.backend == pb.DataParameter.LEVELDB else "lmdb"
            self._keys = []
            images, labels = read_db(os.path.expanduser(dp.source), backend, self._keys)
            groups = _groups(dp)
            rank, size = distributed.shard()
            sampler = self._triplet_sampler(dp, labels, dp.batch_size * size, shuffle, rng, groups, len(top)) \
                if dp.triplets else PairSampler(labels, dp.batch_size * size, dp.images_per_blob,
                                                dp.balance_matches, shuffle, dp.rand_skip, rng, groups,
                                                dp.different_within_group)
            transformer = DataTransformer(tp, self.phase, images.shape[1:])
        except DatasetError as err:
            raise self.error(f"data_param.source {dp.source!r}: {err}") from err
        self._source = BatchSource(images, labels, sampler, transformer, dp.output_all_labels,
                                   (rank, size))
        self._state = self._source.get_state()
        self._rows = None            # record indices of the last batch, one row per item
        self._prefetcher = Prefetcher(self._source.next, dp.prefetch, f"prefetch-{self.name}") \
            if dp.prefetch else None
        if self._prefetcher is not None:
            weakref.finalize(self, self._prefetcher.close)

    def _triplet_sampler(self, dp, labels, batch_size, shuffle, rng, groups, num_tops):
        if dp.HasField("images_per_blob") and dp.images_per_blob != 3:
            raise self.error(f"data_param.triplets packs 3 images per item, but images_per_blob is "
                             f"{dp.images_per_blob}; set images_per_blob: 3 or leave it out")
        if num_tops > 1 and not dp.output_all_labels:
            raise self.error("data_param.triplets needs output_all_labels: true for its label top "
                             "(N×3: anchor, positive and negative labels)")
        return TripletSampler(labels, batch_size, shuffle, dp.rand_skip, rng,
                              groups if dp.triplet_negative_same_group else None)

    def reshape(self, bottom, top):
        top[0].reshape(self._source.data_shape)
        if len(top) > 1:
            top[1].reshape(self._source.label_shape)

    def forward(self, bottom, top):
        if self._prefetcher is None:
            data, labels, self._state, self._rows = self._source.next()
        else:
            data, labels, self._state, self._rows = self._prefetcher.get()
        top[0].data[...] = data
        if len(top) > 1:
            top[1].data[...] = labels

    def batch_records(self, item):
        """'<source> record <key>' (one per stacked image) of item `item` of the last batch."""
        if self._rows is None or not 0 <= item < len(self._rows):
            return []
        return [f"{self.param.data_param.source} record {self._keys[row]}" for row in np.ravel(self._rows[item])]

    def get_state(self):
        """Position and RNG state after the last batch this layer returned (JSON-serialisable)."""
        return self._state

    def set_state(self, state):
        """Continue exactly after the batch at which get_state() was taken."""
        self.close()
        self._source.set_state(state)
        self._state = self._source.get_state()

    def close(self):
        """Stop the prefetch thread (a later forward starts it again)."""
        if self._prefetcher is not None:
            self._prefetcher.close()


def _groups(dp):
    """Class -> group table for different_within_group or triplet_negative_same_group, from
    labels.txt in or beside the source."""
    field = "different_within_group" if dp.different_within_group else \
        "triplet_negative_same_group" if dp.triplets and dp.triplet_negative_same_group else None
    if field is None:
        return None
    groups = class_groups(os.path.expanduser(dp.source))
    if groups is None:
        raise DatasetError(f"data_param.{field} needs {LABELS_FILE} (lines "
                           f"'<label> <group>/<name>') in or beside the source folder, as "
                           f"`layerforge data omniglot` writes it")
    return groups
