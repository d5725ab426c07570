"""Splits: exact hand-checked assignments, RecBole's counts on ML-100K, no leakage."""

import numpy as np
import pytest

from tfrecs.data import EmptySplitError, RecDataset, k_core, make_split, to_implicit
from tfrecs.data.splits import recbole_counts


def _toy():
    # user a: 4 events (two share timestamp 3: file order breaks the tie); b: 2; c: 1.
    return RecDataset(
        "toy",
        {
            "user_id": np.array(["a", "a", "b", "a", "a", "b", "c"]),
            "item_id": np.array(["i1", "i2", "i1", "i3", "i4", "i5", "i2"]),
            "rating": np.array([5, 3, 4, 4, 1, 2, 5], dtype=np.float32),
            "timestamp": np.array([1, 3, 5, 3, 9, 6, 2], dtype=np.int64),
        },
    )


def _pairs(part):
    return sorted(zip(part.interactions["user_id"].tolist(), part.interactions["item_id"].tolist()))


def test_leave_one_out_by_time_on_a_hand_made_case():
    split = make_split(_toy(), "loo")
    assert _pairs(split.test) == [("a", "i4"), ("b", "i5")]
    assert _pairs(split.valid) == [("a", "i3")]  # i2 and i3 tie at t=3; i3 comes later in the file
    assert _pairs(split.train) == [("a", "i1"), ("a", "i2"), ("b", "i1"), ("c", "i2")]


def test_ml100k_split_sizes_match_recbole(ml100k):
    assert make_split(ml100k, "random").sizes() == {"train": 80808, "valid": 9596, "test": 9596}
    assert make_split(ml100k, "random-global").sizes() == {"train": 80000, "valid": 10000, "test": 10000}
    loo = make_split(ml100k, "loo")
    assert loo.sizes() == {"train": 98114, "valid": 943, "test": 943}
    # every training prefix -> next item is an instance: each user's first item is no target
    assert len(loo.train) - ml100k.num_users == 97171


def test_recbole_rounding_of_small_groups():
    counts = recbole_counts(np.array([1, 2, 5, 9, 10, 65]), (0.8, 0.1, 0.1))
    np.testing.assert_array_equal(counts, [[1, 0, 0], [1, 0, 1], [3, 1, 1], [7, 1, 1], [8, 1, 1], [53, 6, 6]])


@pytest.mark.parametrize("name", ["loo", "random", "random-global", "temporal"])
def test_parts_are_disjoint_and_cover_every_interaction(ml100k, name):
    split = make_split(ml100k, name)
    keys = [
        set(zip(p.interactions["user_id"], p.interactions["item_id"], p.interactions["timestamp"]))
        for p in (split.train, split.valid, split.test)
    ]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert sum(len(k) for k in keys) == len(ml100k)


def test_random_split_is_per_user_and_seeded(ml100k):
    a, b, c = (make_split(ml100k, "random", seed=s) for s in (1, 1, 2))
    assert _pairs(a.test) == _pairs(b.test) and _pairs(a.test) != _pairs(c.test)
    users, counts = np.unique(ml100k.interactions["user_id"], return_counts=True)
    test_users, test_counts = np.unique(a.test.interactions["user_id"], return_counts=True)
    expected = dict(zip(users, recbole_counts(counts, (0.8, 0.1, 0.1))[:, 2]))
    assert all(expected[u] == c for u, c in zip(test_users, test_counts))


def test_temporal_split_puts_the_latest_interactions_in_test(ml100k):
    split = make_split(ml100k, "temporal")
    assert split.train.interactions["timestamp"].max() <= split.valid.interactions["timestamp"].min()
    assert split.valid.interactions["timestamp"].max() <= split.test.interactions["timestamp"].min()


def test_empty_split_and_unknown_names_are_clear_errors():
    single = RecDataset("single", {"user_id": np.array(["a"]), "item_id": np.array(["x"]), "timestamp": np.array([1])})
    with pytest.raises(EmptySplitError, match="the test part of the 'loo' split is empty"):
        make_split(single, "loo")
    with pytest.raises(KeyError, match="unknown split 'lou'; known splits: loo, random"):
        make_split(_toy(), "lou")
    with pytest.raises(ValueError, match="ratios must be three non-negative numbers summing to 1"):
        make_split(_toy(), "random", ratios=(0.5, 0.1, 0.1))


def test_implicit_threshold_and_k_core():
    toy = _toy()
    assert len(to_implicit(toy)) == 7
    assert to_implicit(toy, min_rating=4).interactions["rating"].min() >= 4
    # items with >= 2 users: i1 (a, b) and i2 (a, c); users then keep >= 1 each.
    assert _pairs(k_core(toy, min_user_interactions=1, min_item_interactions=2)) == [
        ("a", "i1"),
        ("a", "i2"),
        ("b", "i1"),
        ("c", "i2"),
    ]
    # 2-core: c goes, then i2..i5 fall below 2, then a and b hold one item each: nothing is left.
    assert len(k_core(toy, min_user_interactions=2, min_item_interactions=2)) == 0
