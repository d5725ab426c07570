"""Negative sampling as ``tf.data`` transforms: uniform and popularity samplers,
pointwise and pairwise outputs, and sampling probabilities for the logQ correction.

Items are dense catalogue indices (``RecDataset.item_index``, ``0..num_items-1``); users
are dense user indices. A sampler draws ``K`` negatives per positive, optionally never
one of the user's own positives (``exclude=PositiveIndex``):

* ``UniformSampler``: uniform over the catalogue; with exclusion it draws exactly
  uniformly over the items the user has *not* interacted with (one draw, no rejection).
* ``PopularitySampler``: ``P(i) ~ count_i ** alpha`` (``alpha=0.75`` as in word2vec); with
  exclusion it rejects and redraws positives until none is left, which is the same
  distribution renormalised over the user's non-positives.

Draws use stateless ops only (``tf.random.stateless_uniform``). ``sample_negatives``
seeds batch ``b`` of an epoch with ``(seed, r_b)``, ``r`` being the stream of
``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``: the same seed gives the
same negatives in every run, and each epoch gets fresh ones.

Example::

    positives = PositiveIndex.from_dataset(split.train)
    sampler = PopularitySampler(item_counts(split.train), alpha=0.75, exclude=positives)
    ds = tf.data.Dataset.from_tensor_slices({"user_id": users, "item_id": items}).batch(1024)
    ds = sample_negatives(ds, sampler, num_negatives=4, output="pointwise", seed=7)
    # -> batches of 5 * 1024 rows: {"user_id", "item_id", "label"}
"""

from typing import Dict, Mapping, Optional

import numpy as np
import tensorflow as tf

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import RecDataset
from tfrecs.pipelines.transforms import batch_seeds, check_batch_keys, epoch_key

OUTPUTS = ("pointwise", "pairwise")
DEFAULT_ALPHA = 0.75
PROBABILITY_KEY = "candidate_sampling_probability"


class SamplingError(InputError):
    """Negatives cannot be drawn as asked (e.g. a catalogue too small)."""


def check_count(name: str, value, minimum: int = 1, owner: str = "") -> int:
    """``value`` as an int, or ``SamplingError`` naming the argument unless it is an integer >= ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SamplingError(f"{owner}{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def check_alpha(alpha, owner: str = "PopularitySampler: ") -> float:
    """``alpha`` as a float, or ``SamplingError`` unless it is a finite real number >= 0.

    A negative exponent would favour the rarest items (a data set drawn from
    ``count ** -1``), NaN or infinity give no distribution at all.
    """
    if (
        isinstance(alpha, (bool, np.bool_))
        or not isinstance(alpha, (int, float, np.integer, np.floating))
        or not np.isfinite(alpha)
        or alpha < 0
    ):
        raise SamplingError(
            f"{owner}alpha={alpha!r} must be a finite number >= 0 (0: uniform over the items "
            "seen, 0.75: word2vec, 1: frequency)"
        )
    return float(alpha)


def item_counts(ds: RecDataset) -> np.ndarray:
    """Interactions per catalogue item (``[num_items]`` int64, items without any: 0)."""
    return np.bincount(ds.item_indices(), minlength=ds.num_items).astype(np.int64)


class PositiveIndex:
    """Each user's positive items as one sorted key vector ``user * num_items + item``,
    so membership of a batch of (user, item) pairs is one ``tf.searchsorted``.

    Example::

        index = PositiveIndex.from_dataset(split.train)
        index.contains(tf.constant([0, 0]), tf.constant([3, 4]))  # -> [True, False]
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, num_users: int, num_items: int):
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if len(users) != len(items):
            raise ValueError(f"users and items differ in length: {len(users)} vs {len(items)}")
        if len(users) and (users.min() < 0 or users.max() >= num_users):
            raise ValueError(f"user indices must be in [0, {num_users}), got range [{users.min()}, {users.max()}]")
        if len(items) and (items.min() < 0 or items.max() >= num_items):
            raise ValueError(f"item indices must be in [0, {num_items}), got range [{items.min()}, {items.max()}]")
        self.num_users, self.num_items = int(num_users), int(num_items)
        keys = np.unique(users * num_items + items)
        self.counts = np.bincount(keys // num_items, minlength=num_users).astype(np.int64)
        self.row_starts = np.r_[0, np.cumsum(self.counts)[:-1]].astype(np.int64)
        rank = np.arange(len(keys), dtype=np.int64) - self.row_starts[keys // num_items]
        self.keys = keys
        self._keys = tf.constant(keys)
        # q_i = p_i - i per user (non-decreasing): the j-th non-positive item is j + #{q_i <= j}
        self._skip_keys = tf.constant(keys - rank)
        self._counts = tf.constant(self.counts)
        self._row_starts = tf.constant(self.row_starts)

    @classmethod
    def from_dataset(cls, ds: RecDataset) -> "PositiveIndex":
        """Every (user, item) interaction of ``ds`` (pass the training part)."""
        return cls(ds.user_indices(), ds.item_indices(), ds.num_users, ds.num_items)

    def user_items(self, user: int) -> np.ndarray:
        """Sorted positive items of one user (for inspection and tests)."""
        start = self.row_starts[user]
        return self.keys[start : start + self.counts[user]] - user * self.num_items

    def contains(self, users: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
        """Whether each ``(users, items)`` pair (same shape, int64) is a positive."""
        users = tf.cast(users, tf.int64)
        query = users * self.num_items + tf.cast(items, tf.int64)
        flat = tf.reshape(query, [-1])
        position = tf.searchsorted(self._keys, flat, side="left", out_type=tf.int64)
        found = tf.gather(self._keys, tf.minimum(position, tf.size(self._keys, out_type=tf.int64) - 1))
        hit = tf.logical_and(tf.equal(found, flat), tf.size(self._keys) > 0)
        return tf.reshape(hit, tf.shape(query))

    def pairs_of(self, users: tf.Tensor):
        """Every positive of ``users`` ([B] int64) as ``(row in users, item)`` int64 vectors."""
        users = tf.cast(users, tf.int64)
        starts = tf.gather(self._row_starts, users)
        positions = tf.ragged.range(starts, starts + self.num_positives(users))
        rows = positions.value_rowids()
        items = tf.gather(self._keys, positions.flat_values) - tf.gather(users, rows) * self.num_items
        return rows, items

    def num_positives(self, users: tf.Tensor) -> tf.Tensor:
        return tf.gather(self._counts, tf.cast(users, tf.int64))

    def nth_non_positive(self, users: tf.Tensor, ranks: tf.Tensor) -> tf.Tensor:
        """The ``ranks``-th (0-based) item each user has *not* interacted with.

        ``users`` is ``[B]``, ``ranks`` is ``[B, K]`` with ``0 <= rank < num_items - n_user``.
        """
        users = tf.cast(users, tf.int64)[:, None]
        query = users * self.num_items + ranks
        below = tf.searchsorted(self._skip_keys, tf.reshape(query, [-1]), side="right", out_type=tf.int64)
        skipped = tf.reshape(below, tf.shape(query)) - tf.gather(self._row_starts, users)
        return ranks + skipped


class Sampler:
    """Base of the samplers: ``sample(users, num_negatives, seed) -> [B, K]`` item indices."""

    num_items: int
    exclude: Optional[PositiveIndex]

    @property
    def probabilities(self) -> np.ndarray:
        """``[num_items]`` probability of drawing each item (before any exclusion)."""
        raise NotImplementedError

    def check_capacity(self, num_negatives: int) -> None:
        """Raises ``SamplingError`` unless every user has ``num_negatives`` items to draw from.

        Without exclusion the catalogue needs ``num_negatives + 1`` items of non-zero
        probability (room for the positive); with exclusion each user needs
        ``num_negatives`` such items that are not among its positives.
        """
        check_count("num_negatives", num_negatives)
        support = self.probabilities > 0
        size = int(support.sum())
        if self.exclude is None:
            if size < num_negatives + 1:
                raise SamplingError(
                    f"a catalogue of {self.num_items} items ({size} with non-zero probability) cannot "
                    f"supply {num_negatives} negatives per positive (needs at least {num_negatives + 1})"
                )
            return
        keys = self.exclude.keys
        excluded = np.bincount(
            keys // self.num_items, weights=support[keys % self.num_items], minlength=self.exclude.num_users
        )
        available = size - excluded
        if available.min() < num_negatives:
            user = int(np.argmin(available))
            raise SamplingError(
                f"a catalogue of {self.num_items} items ({size} with non-zero probability) cannot "
                f"supply {num_negatives} negatives per positive: user {user} has only "
                f"{int(available[user])} items it has not interacted with"
            )

    def sample(self, users: tf.Tensor, num_negatives: int, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


class UniformSampler(Sampler):
    """Uniform negatives; with ``exclude``, uniform over each user's non-positives.

    Example::

        sampler = UniformSampler(num_items=1682, exclude=PositiveIndex.from_dataset(train))
        sampler.sample(tf.constant([0, 1]), 4, seed=tf.constant([7, 0]))  # [2, 4] int64
    """

    def __init__(self, num_items: int, exclude: Optional[PositiveIndex] = None):
        num_items = check_count("num_items", num_items, owner="UniformSampler: ")
        if exclude is not None and exclude.num_items != num_items:
            raise ValueError(f"exclude covers {exclude.num_items} items, the sampler {num_items}")
        self.num_items, self.exclude = int(num_items), exclude

    @property
    def probabilities(self) -> np.ndarray:
        return np.full(self.num_items, 1.0 / self.num_items)

    def sample(self, users, num_negatives, seed):
        users = tf.cast(users, tf.int64)
        shape = tf.stack([tf.size(users, out_type=tf.int32), num_negatives])
        draws = tf.random.stateless_uniform(shape, seed, dtype=tf.float64)
        if self.exclude is None:
            return tf.minimum(tf.cast(draws * self.num_items, tf.int64), self.num_items - 1)
        available = tf.cast(self.num_items - self.exclude.num_positives(users), tf.float64)[:, None]
        ranks = tf.minimum(tf.cast(draws * available, tf.int64), tf.cast(available, tf.int64) - 1)
        return self.exclude.nth_non_positive(users, ranks)


class PopularitySampler(Sampler):
    """Negatives drawn with probability proportional to ``counts ** alpha``.

    Args:
        counts: ``[num_items]`` interaction counts (``item_counts(train)``).
        alpha: popularity exponent (0: uniform over items with counts > 0, 1: frequency).
        exclude: never return a user's positives (redrawn until none is left).
        max_rounds: redraw rounds before failing (a user whose positives hold most of the
            probability mass needs many).

    Raises:
        SamplingError: ``alpha`` is not a finite number >= 0, ``max_rounds < 1``, counts are
            empty, negative or non-finite, or ``counts ** alpha`` overflows (names the argument).

    Example::

        sampler = PopularitySampler(item_counts(train), alpha=0.75)
    """

    def __init__(
        self,
        counts: np.ndarray,
        alpha: float = DEFAULT_ALPHA,
        exclude: Optional[PositiveIndex] = None,
        max_rounds: int = 1000,
    ):
        alpha = check_alpha(alpha)
        max_rounds = check_count("max_rounds", max_rounds, owner="PopularitySampler: ")
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1 or len(counts) == 0:
            raise SamplingError(f"counts must be a non-empty 1-D array, got shape {counts.shape}")
        if (counts < 0).any() or not np.isfinite(counts).all():
            raise SamplingError("counts must be finite and non-negative")
        if counts.sum() == 0:
            raise SamplingError("every item has count 0: nothing to sample from")
        if exclude is not None and exclude.num_items != len(counts):
            raise ValueError(f"exclude covers {exclude.num_items} items, counts {len(counts)}")
        with np.errstate(over="ignore"):
            weights = np.where(counts > 0, counts**alpha, 0.0)
        if not np.isfinite(weights.sum()):
            raise SamplingError(
                f"PopularitySampler: alpha={alpha} is too large: the largest count "
                f"({counts.max():.0f}) ** alpha overflows; use a smaller alpha"
            )
        self._probabilities = weights / weights.sum()
        self.num_items, self.alpha, self.exclude, self.max_rounds = len(counts), float(alpha), exclude, int(max_rounds)
        cdf = np.cumsum(self._probabilities)
        self._cdf = tf.constant(cdf / cdf[-1])
        if exclude is not None:
            # each user's sample-able mass must be positive, or rejection never ends
            keys = exclude.keys
            mass = np.bincount(
                keys // self.num_items, weights=self._probabilities[keys % self.num_items], minlength=exclude.num_users
            )
            if (1.0 - mass).min() <= 1e-12:
                user = int(np.argmax(mass))
                raise SamplingError(f"user {user}'s positives hold all the sampling mass: no negative can be drawn")

    @property
    def probabilities(self) -> np.ndarray:
        return self._probabilities

    def _draw(self, shape, seed):
        uniform = tf.random.stateless_uniform(shape, seed, dtype=tf.float64)
        return tf.minimum(
            tf.searchsorted(self._cdf, tf.reshape(uniform, [-1]), side="right", out_type=tf.int64), self.num_items - 1
        )

    def sample(self, users, num_negatives, seed):
        users = tf.cast(users, tf.int64)
        shape = tf.stack([tf.size(users, out_type=tf.int32), num_negatives])
        negatives = tf.reshape(self._draw(shape, seed), shape)
        if self.exclude is None:
            return negatives
        repeated_users = tf.broadcast_to(users[:, None], shape)

        def redraw(round_, items):
            hits = self.exclude.contains(repeated_users, items)
            fresh = tf.reshape(self._draw(shape, tf.random.experimental.stateless_fold_in(seed, round_)), shape)
            return [round_ + 1, tf.where(hits, fresh, items)]

        def pending(round_, items):
            return tf.reduce_any(self.exclude.contains(repeated_users, items))

        rounds, negatives = tf.while_loop(
            pending, redraw, [tf.constant(1, tf.int64), negatives], maximum_iterations=self.max_rounds
        )
        left = tf.reduce_sum(tf.cast(self.exclude.contains(repeated_users, negatives), tf.int64))
        with tf.control_dependencies(
            [
                tf.debugging.assert_equal(
                    left,
                    tf.constant(0, tf.int64),
                    message=f"PopularitySampler: positives still drawn after max_rounds={self.max_rounds} redraws",
                )
            ]
        ):
            return tf.identity(negatives)


def _repeat_rows(value, repeats: int):
    """Each row of a dense or ragged batch tensor ``repeats`` times, in place."""
    if isinstance(value, tf.RaggedTensor):
        rows = tf.repeat(tf.range(value.nrows()), repeats)
        return tf.gather(value, rows)
    return tf.repeat(value, repeats, axis=0)


def sample_negatives(
    dataset: tf.data.Dataset,
    sampler: Sampler,
    num_negatives: int = 4,
    output: str = "pointwise",
    seed: int = 0,
    user_key: str = "user_id",
    item_key: str = "item_id",
    label_key: str = "label",
    negative_key: str = "negative_item_id",
    item_features: Optional[Mapping[str, np.ndarray]] = None,
) -> tf.data.Dataset:
    """Adds ``num_negatives`` sampled negatives per positive to a batched dataset.

    Args:
        dataset: batches ``{user_key: [B] int, item_key: [B] int, ...}`` of positives.
        sampler: a ``UniformSampler`` or ``PopularitySampler``.
        num_negatives: ``K``.
        output: ``"pointwise"``: ``B * (K + 1)`` rows (each positive, label 1, followed by its
            ``K`` negatives, label 0; other features repeated); ``"pairwise"``: ``B * K`` BPR
            triples ``{user_key, item_key (positive), negative_key}``.
        seed: seed of the stateless draws (see the module doc).
        item_features: ``{name: [num_items, ...] array}`` of item-side features, gathered for
            the sampled items (pointwise: under ``name``; pairwise: ``"negative_" + name``).
            Item-side columns not listed here would be copied from the positive: list them.

    Returns:
        The transformed ``tf.data.Dataset``.

    Raises:
        KeyError: a feature is missing from the batches.
        SamplingError: ``num_negatives`` is not an integer >= 1, or the catalogue cannot supply
            that many negatives.
        InputError: an unknown ``output`` or a seed that is not an integer.

    Example::

        ds = sample_negatives(batches, UniformSampler(1682), num_negatives=1, output="pairwise")
    """
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
    check_count("num_negatives", num_negatives, owner="sample_negatives: ")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"sample_negatives: seed={seed!r} must be an integer")
    check_batch_keys(dataset, user_key, item_key)
    sampler.check_capacity(num_negatives)
    tables = {name: tf.constant(values) for name, values in (item_features or {}).items()}
    k = int(num_negatives)

    def transform(batch: Dict[str, tf.Tensor], seed_pair) -> Dict[str, tf.Tensor]:
        positives = tf.cast(batch[item_key], tf.int64)
        negatives = sampler.sample(batch[user_key], k, seed_pair)  # [B, K]
        if output == "pointwise":
            out = {name: _repeat_rows(value, k + 1) for name, value in batch.items()}
            items = tf.reshape(tf.concat([positives[:, None], negatives], axis=1), [-1])
            out[item_key] = tf.cast(items, batch[item_key].dtype)
            labels = tf.concat(
                [tf.ones_like(positives[:, None], tf.float32), tf.zeros_like(negatives, tf.float32)], axis=1
            )
            out[label_key] = tf.reshape(labels, [-1])
            for name, table in tables.items():
                out[name] = tf.gather(table, items)
            return out
        out = {name: _repeat_rows(value, k) for name, value in batch.items()}
        flat = tf.reshape(negatives, [-1])
        out[negative_key] = tf.cast(flat, batch[item_key].dtype)
        for name, table in tables.items():
            out[f"negative_{name}"] = tf.gather(table, flat)
        return out

    zipped = tf.data.Dataset.zip(dataset, batch_seeds(seed, key=epoch_key(dataset)))
    return zipped.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def sampling_probabilities(counts: np.ndarray) -> np.ndarray:
    """Probability of each item being a candidate under in-batch sampling: its frequency.

    Example::

        q = sampling_probabilities(item_counts(split.train))
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() <= 0:
        raise SamplingError("counts sum to 0: no item is ever sampled")
    return counts / counts.sum()


def add_sampling_probability(
    dataset: tf.data.Dataset, probabilities: np.ndarray, item_key: str = "item_id", key: str = PROBABILITY_KEY
) -> tf.data.Dataset:
    """Adds each candidate's sampling probability (for TFRS ``candidate_sampling_probability``).

    With in-batch negatives the candidates are the batch's positives, drawn with their
    training frequency: pass ``sampling_probabilities(item_counts(train))``. Give the key to
    ``RetrievalModel(sampling_probability_key=key)`` (logQ correction).

    Example::

        ds = add_sampling_probability(ds, sampling_probabilities(item_counts(train)))
    """
    check_batch_keys(dataset, item_key)
    table = tf.constant(np.asarray(probabilities, dtype=np.float32))

    def add(batch):
        out = dict(batch)
        out[key] = tf.gather(table, tf.cast(batch[item_key], tf.int64))
        return out

    return dataset.map(add, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
