"""Sampled-negatives protocol: the sampler's guarantees and hand-computed evaluations."""

import numpy as np
import pytest

import tfrecs  # noqa: F401  - before TensorFlow
import tensorflow as tf

from tfrecs.evaluation import RankingTargets, evaluate_sampled, sample_negatives

LOG2_3 = np.log2(3)


def lookup_scores(scores):
    table = tf.constant(scores, tf.float32)
    return lambda users: tf.gather(table, users)


@pytest.fixture(scope="module")
def random_targets():
    rng = np.random.default_rng(3)
    num_users, num_items = 120, 400
    pos_users, pos_items, exc_users, exc_items = [], [], [], []
    for user in range(num_users):
        items = rng.choice(num_items, rng.integers(1, 80), replace=False)
        split = rng.integers(1, len(items) + 1)
        pos_users += [user] * split
        pos_items += list(items[:split])
        exc_users += [user] * (len(items) - split)
        exc_items += list(items[split:])
    return RankingTargets.from_pairs(pos_users, pos_items, exc_users, exc_items, num_items=num_items)


def test_negatives_avoid_every_interacted_item_and_are_distinct(random_targets):
    t = random_targets
    negatives = sample_negatives(t, num_negatives=100, seed=1)
    assert negatives.shape == (t.num_pairs, 100)
    user_of_pair = np.repeat(np.arange(len(t.users)), t.positives.lengths)
    for row, user_row in zip(negatives, user_of_pair):
        interacted = set(t.positives.row(user_row)) | set(t.exclusions.row(user_row))
        assert not interacted & set(row.tolist())
        assert len(set(row.tolist())) == 100
        assert row.min() >= 0 and row.max() < t.num_items


def test_same_seed_same_negatives_other_seed_different(random_targets):
    first = sample_negatives(random_targets, num_negatives=20, seed=5)
    again = sample_negatives(random_targets, num_negatives=20, seed=5)
    other = sample_negatives(random_targets, num_negatives=20, seed=6)
    np.testing.assert_array_equal(first, again)
    assert (first != other).mean() > 0.5


def frequency_chi_square(draws, expected_probabilities):
    observed = np.bincount(draws, minlength=len(expected_probabilities))
    expected = expected_probabilities * len(draws)
    support = expected > 0
    assert observed[~support].sum() == 0
    return ((observed[support] - expected[support]) ** 2 / expected[support]).sum(), support.sum() - 1


def one_negative_per_pair_targets():
    # 400 users x 50 positives (items 0..49): every pool is items 50..249; 20,000 draws.
    users = np.repeat(np.arange(400), 50)
    items = np.tile(np.arange(50), 400)
    return RankingTargets.from_pairs(users, items, num_items=250)


@pytest.mark.parametrize("distribution", ["uniform", "popularity"])
def test_single_draw_frequencies_follow_the_distribution(distribution):
    targets = one_negative_per_pair_targets()
    counts = np.concatenate([np.full(50, 1000.0), np.arange(10.0, 210.0)])
    item_counts = counts if distribution == "popularity" else None
    draws = sample_negatives(targets, 1, distribution, item_counts, seed=0).ravel()
    pool_weights = np.where(np.arange(250) >= 50, counts if item_counts is not None else 1.0, 0.0)
    chi2, dof = frequency_chi_square(draws, pool_weights / pool_weights.sum())
    assert dof == 199
    assert chi2 < dof + 5 * np.sqrt(2 * dof)  # ~5 standard deviations


def test_popularity_sampling_rejects_uniform_frequencies():
    # The same uniform draws judged against popularity probabilities fail the check above.
    targets = one_negative_per_pair_targets()
    counts = np.concatenate([np.zeros(50), np.arange(10.0, 210.0)])
    draws = sample_negatives(targets, 1, "uniform", seed=0).ravel()
    chi2, dof = frequency_chi_square(draws, counts / counts.sum())
    assert chi2 > dof + 5 * np.sqrt(2 * dof)


def test_uniform_draws_ignore_item_counts():
    targets = RankingTargets.from_pairs([0, 1], [0, 1], num_items=30)
    skewed = np.r_[np.full(29, 1e-6), 1e6]
    np.testing.assert_array_equal(
        sample_negatives(targets, 5, "uniform", skewed, seed=3), sample_negatives(targets, 5, "uniform", seed=3)
    )


def test_items_with_zero_count_are_never_drawn():
    targets = RankingTargets.from_pairs([0, 1], [0, 1], num_items=30)
    counts = np.ones(30)
    counts[10:20] = 0
    negatives = sample_negatives(targets, 15, "popularity", counts, seed=0)
    assert not np.isin(negatives, np.arange(10, 20)).any()


def test_catalogue_too_small_for_num_negatives_is_an_error():
    # user 4: 3 positives + 5 exclusions of 10 items leaves 2 to draw from
    targets = RankingTargets.from_pairs([4, 4, 4], [0, 1, 2], [4] * 5, [3, 4, 5, 6, 7], num_items=10)
    assert sample_negatives(targets, 2).shape == (3, 2)
    with pytest.raises(ValueError, match="user 4 has only 2 non-interacted items, fewer than num_negatives=3"):
        sample_negatives(targets, 3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"distribution": "zipf"}, "distribution"),
        ({"distribution": "popularity"}, "item_counts"),
        ({"distribution": "popularity", "item_counts": np.ones(3)}, r"item_counts must have shape \(10,\)"),
        ({"distribution": "popularity", "item_counts": -np.ones(10)}, "non-negative"),
        ({"item_counts": np.ones(9)}, r"item_counts must have shape \(10,\)"),
        ({"num_negatives": 0}, "num_negatives"),
    ],
)
def test_bad_sampler_arguments_are_rejected(kwargs, match):
    targets = RankingTargets.from_pairs([0], [0], num_items=10)
    with pytest.raises(ValueError, match=match):
        sample_negatives(targets, **{"num_negatives": 2, **kwargs})


def test_hand_computed_ranks_ties_by_item_index_and_averages_per_user_first():
    targets = RankingTargets.from_pairs([0, 0, 1], [1, 4, 2], num_items=6)
    scores = [[5, 2, 2, 9, 0, 0], [1, 1, 1, 1, 1, 1]]
    negatives = [
        [2, 3],  # (0, 1): candidates 3 (9), 1 (2), 2 (2) -> rank 2, tie won by index
        [0, 3],  # (0, 4): candidates 3, 0, 4 -> rank 3
        [0, 1],
    ]  # (1, 2): all tied, 0 and 1 first -> rank 3
    r = evaluate_sampled(lookup_scores(scores), targets, negatives, ks=(2, 3))
    # per user first: user 0 -> mean of ranks (2, 3), user 1 -> rank 3
    assert r["hr@2"] == pytest.approx((0.5 + 0.0) / 2)  # a plain mean over pairs would be 1/3
    assert r["hr@3"] == 1.0
    assert r["mrr@3"] == pytest.approx(((1 / 2 + 1 / 3) / 2 + 1 / 3) / 2)
    assert r["ndcg@3"] == pytest.approx(((1 / LOG2_3 + 0.5) / 2 + 0.5) / 2)
    assert r["precision@3"] == pytest.approx(1 / 3)


def reference_sampled(scores, targets, negatives, k):
    """Rank of each positive = 1 + candidates scoring higher + tied candidates of lower index."""
    hr, ndcg = {}, {}
    for pair, (user, item) in enumerate(zip(targets.pair_users, targets.positives.values)):
        s = scores[user]
        rank = 1 + sum(s[n] > s[item] or (s[n] == s[item] and n < item) for n in negatives[pair])
        hr.setdefault(user, []).append(float(rank <= k))
        ndcg.setdefault(user, []).append(1 / np.log2(rank + 1) if rank <= k else 0.0)
    return np.mean([np.mean(v) for v in hr.values()]), np.mean([np.mean(v) for v in ndcg.values()])


def test_matches_a_per_pair_reference_on_random_scores(random_targets):
    rng = np.random.default_rng(11)
    scores = rng.integers(0, 25, size=(120, 400)).astype(np.float32)
    negatives = sample_negatives(random_targets, 50, seed=2)
    r = evaluate_sampled(lookup_scores(scores), random_targets, negatives, ks=(10,), batch_size=300)
    hr, ndcg = reference_sampled(scores, random_targets, negatives, 10)
    assert r["hr@10"] == pytest.approx(hr) and r["ndcg@10"] == pytest.approx(ndcg)


@pytest.mark.parametrize(
    "negatives,match",
    [
        (np.zeros((2, 3), np.int64), r"shape \[num_pairs=3"),
        (np.array([[1], [2], [9]]), "outside"),
        (np.array([[1], [2], [4]]), "own positive"),
        (np.array([[1, 1], [0, 1], [0, 1]]), "repeats"),
        (np.array([[1.0], [2.0], [3.0]]), "integer"),
    ],
)
def test_bad_negatives_are_rejected(negatives, match):
    targets = RankingTargets.from_pairs([0, 0, 1], [0, 3, 4], num_items=6)
    with pytest.raises(ValueError, match=match):
        evaluate_sampled(lookup_scores(np.zeros((2, 6))), targets, negatives, ks=(1,))
