"""Negative samplers: requested distributions (chi-square), exclusions never violated,
reproducible seeds, pointwise / pairwise formats, logQ probabilities, clear errors."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrecs.pipelines import (
    PopularitySampler,
    PositiveIndex,
    SamplingError,
    UniformSampler,
    add_sampling_probability,
    item_counts,
    sample_negatives,
    sampling_probabilities,
)


def chi_square_p_value(observed, expected):
    """Upper-tail p-value of Pearson's statistic (Wilson-Hilferty approximation, df >= 10)."""
    observed, expected = np.asarray(observed, float), np.asarray(expected, float)
    keep = expected > 0
    assert observed[~keep].sum() == 0, "draws where the expected count is 0"
    statistic = np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep])
    df = keep.sum() - 1
    z = ((statistic / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))


def _positives(num_users=40, num_items=60, per_user=12, seed=0):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(num_users), per_user)
    items = np.concatenate([rng.choice(num_items, per_user, replace=False) for _ in range(num_users)])
    return users, items, PositiveIndex(users, items, num_users, num_items)


def _draw(sampler, users, k, seed=(1, 2)):
    return sampler.sample(tf.constant(users, tf.int64), k, tf.constant(seed, tf.int64)).numpy()


def test_uniform_sampler_is_uniform():
    draws = _draw(UniformSampler(80), np.zeros(50_000, np.int64), 4).ravel()
    assert chi_square_p_value(np.bincount(draws, minlength=80), np.full(80, len(draws) / 80)) > 1e-4


def test_popularity_sampler_follows_count_to_the_alpha():
    counts = np.round(1000 / np.arange(1, 101) ** 1.1).astype(np.int64)
    counts[[5, 17]] = 0  # never-seen items are never drawn
    for alpha in (0.75, 0.0, 1.0):
        sampler = PopularitySampler(counts, alpha=alpha)
        draws = _draw(sampler, np.zeros(40_000, np.int64), 5).ravel()
        weights = np.where(counts > 0, counts.astype(float) ** alpha, 0.0)
        expected = weights / weights.sum() * len(draws)
        np.testing.assert_allclose(sampler.probabilities, weights / weights.sum())
        assert chi_square_p_value(np.bincount(draws, minlength=100), expected) > 1e-4, alpha


@pytest.mark.parametrize("kind", ["uniform", "popularity"])
def test_excluded_positives_are_never_drawn_and_the_rest_is_renormalised(kind):
    users, items, index = _positives()
    counts = np.bincount(items, minlength=60) + 1
    sampler = UniformSampler(60, exclude=index) if kind == "uniform" else PopularitySampler(counts, exclude=index)
    batch_users = np.repeat(np.arange(40), 1000)
    draws = _draw(sampler, batch_users, 8)
    for user in range(40):
        own = draws[batch_users == user]
        assert not np.isin(own, index.user_items(user)).any()
    user0 = draws[batch_users == 0].ravel()
    weights = np.ones(60) if kind == "uniform" else counts**0.75
    weights[index.user_items(0)] = 0
    assert chi_square_p_value(np.bincount(user0, minlength=60), weights / weights.sum() * len(user0)) > 1e-4


def _batches(users, items, batch_size=64):
    return tf.data.Dataset.from_tensor_slices({"user_id": users, "item_id": items}).batch(batch_size)


def item_counts_of(items, num_items):
    return np.bincount(items, minlength=num_items)


def _collect(ds):
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def test_same_seed_same_negatives_new_epoch_new_negatives():
    users, items, index = _positives()
    sampler = PopularitySampler(item_counts_of(items, 60), exclude=index)
    first = sample_negatives(_batches(users, items), sampler, 3, seed=11)
    again = sample_negatives(_batches(users, items), sampler, 3, seed=11)
    other = sample_negatives(_batches(users, items), sampler, 3, seed=12)
    epoch1, epoch2 = _collect(first), _collect(first)
    rerun = _collect(again)
    assert all(np.array_equal(a["item_id"], b["item_id"]) for a, b in zip(epoch1, rerun))
    assert not all(np.array_equal(a["item_id"], b["item_id"]) for a, b in zip(epoch1, epoch2))
    assert not all(np.array_equal(a["item_id"], b["item_id"]) for a, b in zip(epoch1, _collect(other)))


def test_pointwise_and_pairwise_formats():
    users, items, index = _positives()
    genre = np.arange(60) % 7
    sampler = UniformSampler(60, exclude=index)
    batch = _collect(
        sample_negatives(
            _batches(users[:10], items[:10], 10), sampler, 3, output="pointwise", seed=0, item_features={"genre": genre}
        )
    )[0]
    assert batch["item_id"].shape == (40,)
    np.testing.assert_array_equal(batch["label"], np.tile([1, 0, 0, 0], 10))
    np.testing.assert_array_equal(batch["item_id"][::4], items[:10])
    np.testing.assert_array_equal(batch["user_id"], np.repeat(users[:10], 4))
    np.testing.assert_array_equal(batch["genre"], genre[batch["item_id"]])
    pairs = _collect(sample_negatives(_batches(users[:10], items[:10], 10), sampler, 2, output="pairwise", seed=0))[0]
    assert set(pairs) == {"user_id", "item_id", "negative_item_id"}
    np.testing.assert_array_equal(pairs["item_id"], np.repeat(items[:10], 2))
    for user, negative in zip(pairs["user_id"], pairs["negative_item_id"]):
        assert negative not in index.user_items(user)


def test_a_catalogue_too_small_is_refused():
    with pytest.raises(SamplingError, match="cannot supply 5 negatives"):
        sample_negatives(_batches(np.zeros(4, np.int64), np.zeros(4, np.int64)), UniformSampler(5), 5)
    index = PositiveIndex(np.zeros(8, np.int64), np.arange(8), 2, 10)  # user 0 saw 8 of 10 items
    with pytest.raises(SamplingError, match="user 0 has only 2 items"):
        UniformSampler(10, exclude=index).check_capacity(3)
    with pytest.raises(SamplingError, match="all the sampling mass"):
        PopularitySampler(np.r_[np.ones(8), np.zeros(2)], exclude=index)


def test_missing_features_and_bad_arguments_are_named():
    batches = tf.data.Dataset.from_tensor_slices({"user": np.zeros(4, np.int64)}).batch(2)
    with pytest.raises(KeyError, match="'user_id' is missing"):
        sample_negatives(batches, UniformSampler(10), 1)
    with pytest.raises(ValueError, match="output"):
        sample_negatives(
            _batches(np.zeros(4, np.int64), np.zeros(4, np.int64)), UniformSampler(10), 1, output="listwise"
        )
    with pytest.raises(ValueError, match="item indices"):
        PositiveIndex(np.zeros(2), np.array([1, 12]), 1, 10)


def test_sampling_probabilities_feed_tfrs_logq_correction(ml100k):
    counts = item_counts(ml100k)
    probabilities = sampling_probabilities(counts)
    assert probabilities.sum() == pytest.approx(1.0)
    items = ml100k.item_indices()[:256]
    batch = next(iter(add_sampling_probability(_batches(ml100k.user_indices()[:256], items, 256), probabilities)))
    np.testing.assert_allclose(batch["candidate_sampling_probability"].numpy(), counts[items] / counts.sum(), rtol=1e-6)
    rng = np.random.default_rng(0)
    queries = tf.constant(rng.normal(size=(256, 8)), tf.float32)
    candidates = tf.constant(rng.normal(size=(256, 8)), tf.float32)
    task = tfrs.tasks.Retrieval()
    plain = float(task(queries, candidates))
    corrected = float(task(queries, candidates, candidate_sampling_probability=batch["candidate_sampling_probability"]))
    assert np.isfinite(corrected) and corrected != pytest.approx(plain)


@pytest.mark.parametrize("alpha", [-1, -0.01, float("nan"), float("inf"), -float("inf"), "0.75", None, True])
def test_a_popularity_exponent_that_is_not_a_finite_number_above_zero_is_refused(alpha):
    with pytest.raises(SamplingError, match=r"^PopularitySampler: alpha=.* must be a finite number >= 0"):
        PopularitySampler(np.arange(1, 11), alpha=alpha)


def test_sampler_counts_are_validated_naming_the_argument():
    with pytest.raises(SamplingError, match="alpha=400.0 is too large"):
        PopularitySampler(np.arange(1, 11) * 1000, alpha=400.0)
    with pytest.raises(SamplingError, match="max_rounds=0 must be an integer >= 1"):
        PopularitySampler(np.arange(1, 11), max_rounds=0)
    with pytest.raises(SamplingError, match="UniformSampler: num_items=2.5 must be an integer"):
        UniformSampler(2.5)
    batches = _batches(np.zeros(4, np.int64), np.zeros(4, np.int64))
    for bad in (0, -3, 1.5, True):
        with pytest.raises(SamplingError, match=f"num_negatives={bad!r} must be an integer >= 1"):
            sample_negatives(batches, UniformSampler(10), bad)
    with pytest.raises(ValueError, match="seed='7' must be an integer"):
        sample_negatives(batches, UniformSampler(10), 1, seed="7")
    assert PopularitySampler(np.arange(1, 11), alpha=0).probabilities == pytest.approx(np.full(10, 0.1))
