"""TripletSampler: class structure of every item, balance, seeding, exact resume, same-group negatives."""
import json

import numpy as np
import pytest

from layerforge.data import DatasetError
from layerforge.data.triplets import TripletSampler

LABELS = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6])  # one 7: singleton class
# Classes 1..9 in three groups; class 7 (a singleton record) and 8 alone in theirs; 9 in no group.
GROUPS = np.array([-1, 0, 0, 0, 1, 1, 1, 2, 3, -1])


def sampler(batch_size=5, shuffle=False, rand_skip=0, seed=0, groups=None, labels=LABELS):
    return TripletSampler(labels, batch_size, shuffle, rand_skip, np.random.default_rng(seed), groups)


def items(s, count):
    return np.concatenate([s.next_indices() for _ in range(count)])


@pytest.mark.parametrize("batch_size", [1, 4, 7])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_item_is_anchor_positive_negative(batch_size, shuffle):
    got = items(sampler(batch_size, shuffle), 30)
    assert got.shape == (30 * batch_size, 3)
    a, p, n = LABELS[got.T]
    np.testing.assert_array_equal(a, p)
    assert np.all(a != n)
    singleton = a == 7
    assert np.all(got[~singleton, 0] != got[~singleton, 1])  # never its own positive ...
    np.testing.assert_array_equal(got[singleton, 1], got[singleton, 0])  # ... unless alone in its class


def test_anchors_visit_each_record_once_per_epoch():
    n = len(LABELS)
    anchors = items(sampler(7, shuffle=True), 9)[:, 0].reshape(3, n)
    for epoch in anchors:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(n))
    np.testing.assert_array_equal(items(sampler(4), 21)[:, 0], np.arange(84) % n)


def test_negative_classes_and_positive_records_are_balanced():
    got = items(sampler(50, shuffle=True), 400)   # 20 000 triplets
    anchor_class, negative_class = LABELS[got[:, 0]], LABELS[got[:, 2]]
    classes = np.unique(LABELS)
    for c in classes:   # the negative's class is uniform over the 8 other classes
        share = np.bincount(np.searchsorted(classes, negative_class[anchor_class == c]), minlength=9) / np.sum(
            anchor_class == c)
        expected = np.where(classes == c, 0, 1 / 8)
        np.testing.assert_allclose(share, expected, atol=0.035)
    for c in (3, 5):    # positives: uniform over the anchor's classmates
        members = np.flatnonzero(LABELS == c)
        for anchor in members:
            partners = got[got[:, 0] == anchor, 1]
            share = np.array([np.mean(partners == m) for m in members if m != anchor])
            np.testing.assert_allclose(share, 1 / len(share), atol=0.08)
    assert set(got[:, 2]) == set(range(len(LABELS)))   # every record serves as a negative


def test_seeded_sequences_repeat_and_differ_by_seed():
    np.testing.assert_array_equal(items(sampler(6, True, 5, seed=3), 10), items(sampler(6, True, 5, seed=3), 10))
    assert not np.array_equal(items(sampler(6, True, seed=3), 10), items(sampler(6, True, seed=4), 10))


@pytest.mark.parametrize("groups", [None, GROUPS])
def test_resume_mid_epoch_gives_the_identical_sequence(groups):
    s = sampler(4, shuffle=True, rand_skip=5, groups=groups)
    items(s, 3)   # 12 of 21 records: mid-epoch
    state = json.loads(json.dumps(s.get_state()))
    expected = items(s, 12)   # runs over two epoch boundaries
    restored = sampler(4, shuffle=True, seed=99, groups=groups)
    restored.set_state(state)
    np.testing.assert_array_equal(items(restored, 12), expected)


def test_same_group_negatives():
    got = items(sampler(9, shuffle=True, groups=GROUPS), 300)
    anchor_class, negative_class = LABELS[got[:, 0]], LABELS[got[:, 2]]
    assert np.all(anchor_class != negative_class)
    grouped = np.isin(anchor_class, [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(GROUPS[negative_class[grouped]], GROUPS[anchor_class[grouped]])
    for c, peers in [(1, {2, 3}), (4, {5, 6}), (6, {4, 5})]:
        assert set(negative_class[anchor_class == c]) == peers
    # Alone in its group (7, 8) or in none (9): the negative comes from any other class.
    for c in (7, 8, 9):
        assert len(set(negative_class[anchor_class == c])) >= 5


def test_one_class_is_an_error():
    with pytest.raises(DatasetError, match="triplets needs at least two classes"):
        sampler(labels=np.zeros(5, np.int64))
