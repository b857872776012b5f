"""PairSampler: record order, balanced pairing that alternates across batches, resumable state."""
import json

import numpy as np
import pytest

from layerforge.data import DatasetError
from layerforge.data.pairing import PairSampler

LABELS = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6])  # one 7: singleton class


def sampler(batch_size=5, k=2, balance=True, shuffle=False, rand_skip=0, seed=0, labels=LABELS):
    return PairSampler(labels, batch_size, k, balance, shuffle, rand_skip, np.random.default_rng(seed))


def batches(s, count):
    return [s.next_indices() for _ in range(count)]


@pytest.mark.parametrize("batch_size", [1, 4, 5, 8])
def test_sequential_order_wraps(batch_size):
    first = np.concatenate([b[:, 0] for b in batches(sampler(batch_size, k=1), 12)])
    np.testing.assert_array_equal(first, np.arange(len(first)) % len(LABELS))


def test_rand_skip_starts_within_range():
    starts = {int(sampler(3, k=1, rand_skip=6, seed=s).next_indices()[0, 0]) for s in range(40)}
    assert starts <= set(range(6)) and len(starts) > 2


def test_shuffle_is_a_new_permutation_each_epoch():
    n = len(LABELS)
    first = np.concatenate([b[:, 0] for b in batches(sampler(7, k=1, shuffle=True), 9)])  # 3 epochs
    epochs = first.reshape(3, n)
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(n))
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[0], np.arange(n))


@pytest.mark.parametrize("batch_size", [1, 2, 5, 6])
def test_balanced_pairs_alternate_across_batches(batch_size):
    items = np.concatenate(batches(sampler(batch_size), 30))
    same = LABELS[items[:, 0]] == LABELS[items[:, 1]]
    singleton = LABELS[items[:, 0]] == 7
    expected = np.arange(len(items)) % 2 == 0
    np.testing.assert_array_equal(same, expected)
    assert np.all(items[expected & ~singleton, 0] != items[expected & ~singleton, 1])  # never paired with itself
    np.testing.assert_array_equal(items[expected & singleton, 1], items[expected & singleton, 0])


def test_balanced_partners_cover_classes_and_records():
    items = np.concatenate(batches(sampler(20, shuffle=True), 200))
    different = items[1::2]
    assert set(LABELS[different[:, 1]]) == set(LABELS)
    assert set(items[:, 1]) == set(range(len(LABELS)))


def test_three_images_per_item():
    items = np.concatenate(batches(sampler(3, k=3), 10))
    labels = LABELS[items]
    assert items.shape == (30, 3)
    assert np.all(labels[0::2] == labels[0::2, :1])
    assert np.all(labels[1::2, 1:] != labels[1::2, :1])


def test_unbalanced_partners_are_random():
    items = np.concatenate(batches(sampler(10, balance=False), 50))
    same = LABELS[items[:, 0]] == LABELS[items[:, 1]]
    assert 0 < same.mean() < 0.4 and len(set(items[:, 1])) == len(LABELS)


def test_state_round_trip_is_exact():
    s = sampler(4, shuffle=True, rand_skip=5)
    batches(s, 7)
    state = json.loads(json.dumps(s.get_state()))
    expected = batches(s, 9)
    restored = sampler(4, shuffle=True, seed=99)
    restored.set_state(state)
    np.testing.assert_array_equal(batches(restored, 9), expected)


def test_seeded_runs_repeat():
    np.testing.assert_array_equal(batches(sampler(6, shuffle=True, seed=4), 10),
                                  batches(sampler(6, shuffle=True, seed=4), 10))
    assert not np.array_equal(batches(sampler(6, seed=4), 3), batches(sampler(6, seed=5), 3))


def test_balance_needs_two_classes():
    with pytest.raises(DatasetError, match="balance_matches needs at least two classes"):
        sampler(labels=np.zeros(5, int))
    assert sampler(labels=np.zeros(5, int), balance=False).next_indices().shape == (5, 2)


def omniglot_like(classes_per_group=(5, 3, 1, 4), images=20):
    """Labels of many classes with few images each (class c has `images` records) and the
    class -> group table; group 2 has a single class."""
    groups = np.repeat(np.arange(len(classes_per_group)), classes_per_group)
    labels = np.repeat(np.arange(len(groups)), images)
    return labels, groups


@pytest.mark.parametrize("within", [0.0, 1.0])
def test_many_classes_few_images_balanced(within):
    """242 classes × 20 images (Omniglot's background sets): exact alternation, partners never
    the anchor itself, different partners spread over classes (and within the alphabet at p=1)."""
    labels, groups = omniglot_like((24, 22, 24, 40, 26, 47, 42, 17))
    s = PairSampler(labels, 64, 2, True, True, 0, np.random.default_rng(0), groups, within)
    items = np.concatenate(batches(s, 80))
    same = labels[items[:, 0]] == labels[items[:, 1]]
    np.testing.assert_array_equal(same, np.arange(len(items)) % 2 == 0)
    assert np.all(items[:, 0] != items[:, 1])
    different = items[1::2]
    in_group = groups[labels[different[:, 0]]] == groups[labels[different[:, 1]]]
    if within:
        assert in_group.all()
    else:
        assert 0 < in_group.mean() < 0.3   # random other class: mostly another alphabet
    assert len(set(labels[different[:, 1]])) > 230


def test_within_group_share_and_lone_classes():
    """within_group 0.5: about half the different partners share the anchor's group; a class
    alone in its group (2 → class 8) or missing from the table gets partners from anywhere."""
    labels, groups = omniglot_like()
    table = groups[:-1]      # the last class (group 3) is not in the table: a group of its own
    s = PairSampler(labels, 50, 2, True, False, 0, np.random.default_rng(1), table, 0.5)
    items = np.concatenate(batches(s, 400))
    different = items[1::2]
    a, b = labels[different[:, 0]], labels[different[:, 1]]
    assert np.all(a != b)
    grouped = np.isin(a, [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11])
    share = np.mean(groups[a[grouped]] == groups[b[grouped]])
    by_chance = np.mean([(np.sum(groups == groups[c]) - 1) / (len(groups) - 1) for c in a[grouped]])
    assert abs(share - (0.5 + 0.5 * by_chance)) < 0.03
    for lone in (8, 12):
        assert np.mean(groups[b[a == lone]] == groups[lone]) < 0.4
        assert len(set(b[a == lone])) > 5


def test_within_group_state_round_trip_is_exact():
    labels, groups = omniglot_like()
    s = PairSampler(labels, 6, 2, True, True, 0, np.random.default_rng(4), groups, 0.7)
    batches(s, 5)
    state = json.loads(json.dumps(s.get_state()))
    expected = batches(s, 9)
    restored = PairSampler(labels, 6, 2, True, True, 0, np.random.default_rng(9), groups, 0.7)
    restored.set_state(state)
    np.testing.assert_array_equal(batches(restored, 9), expected)
