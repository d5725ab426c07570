"""Seeded synthetic data with planted structure, streamable at any scale.

Three generators, each as a chunk iterator (``iter_*``, constant memory) and as an
in-memory convenience:

* ``synthetic_implicit``: users pick items from ``softmax(strength * u.v + popularity)``
  with low-rank user / item factors, so a factorisation model can measurably learn it.
* ``synthetic_ctr``: Criteo-schema rows (numeric ``I1..I13``, categorical ``C1..C26`` with
  Zipf-distributed int64 ids) labelled by a hidden logistic model with field crosses.
* ``synthetic_sequences``: per-user item sequences from a planted Markov chain: each item
  has a few favourite successors followed with probability ``follow_probability``.

Determinism: the same arguments give the same data. Chunks are drawn from
``numpy.random.default_rng([seed, chunk_index])``, so a stream is reproducible and the
chunk size is part of the arguments that define it.

Example::

    ds = synthetic_implicit(num_users=500, num_items=300, seed=7)
    ctr = synthetic_ctr(num_examples=10_000, vocabulary_sizes=1000, seed=7)
"""

from dataclasses import dataclass
from typing import Iterator, Sequence, Union

import numpy as np

from tfrecs.data.dataset import Columns, RecDataset

NUM_NUMERIC = 13
NUM_CATEGORICAL = 26


def _concat(chunks: Iterator[Columns]) -> Columns:
    chunks = list(chunks)
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def _check_positive(**values):
    for name, value in values.items():
        if value is None or value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _zipf_probabilities(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


# Implicit feedback -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ImplicitWorld:
    """The hidden parameters of ``synthetic_implicit``: item factors and popularity."""

    item_factors: np.ndarray
    item_popularity: np.ndarray
    rank: int
    strength: float

    @classmethod
    def make(cls, num_items: int, rank: int, popularity_exponent: float, strength: float, seed: int):
        rng = np.random.default_rng([seed, 0x17E3])
        factors = rng.normal(size=(num_items, rank)) / np.sqrt(rank)
        popularity = np.log(_zipf_probabilities(num_items, popularity_exponent))[rng.permutation(num_items)]
        return cls(factors, popularity - popularity.max(), rank, strength)

    def user_factors(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.normal(size=(count, self.rank)) / np.sqrt(self.rank)


def iter_synthetic_implicit(
    num_users: int = 1000,
    num_items: int = 500,
    interactions_per_user: int = 30,
    rank: int = 8,
    strength: float = 6.0,
    popularity_exponent: float = 0.8,
    seed: int = 0,
    chunk_users: int = 4096,
) -> Iterator[Columns]:
    """Yields interaction chunks of ``synthetic_implicit`` (see there); ids are int64."""
    _check_positive(
        num_users=num_users,
        num_items=num_items,
        interactions_per_user=interactions_per_user,
        rank=rank,
        chunk_users=chunk_users,
    )
    if interactions_per_user > num_items:
        raise ValueError(f"interactions_per_user ({interactions_per_user}) exceeds num_items ({num_items})")
    world = ImplicitWorld.make(num_items, rank, popularity_exponent, strength, seed)
    for chunk, first_user in enumerate(range(0, num_users, chunk_users)):
        rng = np.random.default_rng([seed, 1 + chunk])
        count = min(chunk_users, num_users - first_user)
        logits = strength * world.user_factors(rng, count) @ world.item_factors.T + world.item_popularity
        gumbel = -np.log(-np.log(rng.random(logits.shape)))
        # Gumbel top-k: a sample without replacement from softmax(logits).
        picked = np.argpartition(-(logits + gumbel), interactions_per_user - 1, axis=1)[:, :interactions_per_user]
        order = rng.permuted(np.tile(np.arange(interactions_per_user), (count, 1)), axis=1)
        users = np.repeat(np.arange(first_user, first_user + count, dtype=np.int64), interactions_per_user)
        picked_logits = np.take_along_axis(logits, picked, axis=1)
        ratings = np.clip(np.round(3 + (picked_logits - picked_logits.mean(1, keepdims=True)) / 2), 1, 5)
        yield {
            "user_id": users,
            "item_id": picked.reshape(-1).astype(np.int64),
            "rating": ratings.reshape(-1).astype(np.float32),
            "timestamp": (1_000_000 + order.reshape(-1)).astype(np.int64),
        }


def synthetic_implicit(
    num_users: int = 1000,
    num_items: int = 500,
    interactions_per_user: int = 30,
    rank: int = 8,
    strength: float = 6.0,
    popularity_exponent: float = 0.8,
    seed: int = 0,
    chunk_users: int = 4096,
) -> RecDataset:
    """Implicit interactions with a planted low-rank structure, as a ``RecDataset``.

    Each user draws ``interactions_per_user`` distinct items from
    ``softmax(strength * user_factors @ item_factors.T + log_popularity)``; timestamps give
    each user's draws a random order. The item table holds ``item_id`` and ``cluster``
    (the item's strongest factor), so item features carry signal too.

    Example::

        ds = synthetic_implicit(num_users=200, num_items=100, interactions_per_user=10, seed=1)
        len(ds)  # -> 2000
    """
    interactions = _concat(
        iter_synthetic_implicit(
            num_users, num_items, interactions_per_user, rank, strength, popularity_exponent, seed, chunk_users
        )
    )
    world = ImplicitWorld.make(num_items, rank, popularity_exponent, strength, seed)
    items = {
        "item_id": np.arange(num_items, dtype=np.int64),
        "cluster": np.argmax(world.item_factors, axis=1).astype(np.int64),
    }
    users = {"user_id": np.arange(num_users, dtype=np.int64)}
    return RecDataset("synthetic-implicit", interactions, users, items)


# CTR -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CtrWorld:
    """Hidden logistic model of ``synthetic_ctr``: per-id weights, numeric weights, crosses."""

    vocabulary_sizes: tuple
    id_cdfs: tuple
    id_permutations: tuple
    id_weights: tuple
    numeric_weights: np.ndarray
    numeric_log_means: np.ndarray
    crosses: tuple
    cross_vectors: dict
    bias: float

    @classmethod
    def make(
        cls,
        vocabulary_sizes: Sequence[int],
        zipf_exponent: float,
        num_crosses: int,
        cross_dim: int,
        cross_strength: float,
        seed: int,
    ):
        rng = np.random.default_rng([seed, 0xC7A])
        cdfs, permutations, weights = [], [], []
        for size in vocabulary_sizes:
            cdfs.append(np.cumsum(_zipf_probabilities(size, zipf_exponent)))
            permutations.append(rng.permutation(size).astype(np.int64))
            weights.append((rng.normal(size=size) * 0.35).astype(np.float32))
        fields = rng.permutation(len(vocabulary_sizes))
        crosses = tuple((int(fields[2 * i]), int(fields[2 * i + 1])) for i in range(num_crosses))
        cross_vectors = {
            f: (
                rng.normal(size=(vocabulary_sizes[f], cross_dim)) * np.sqrt(cross_strength / np.sqrt(cross_dim))
            ).astype(np.float32)
            for pair in crosses
            for f in pair
        }
        return cls(
            tuple(vocabulary_sizes),
            tuple(cdfs),
            tuple(permutations),
            tuple(weights),
            rng.normal(size=NUM_NUMERIC).astype(np.float32) * 0.3,
            rng.uniform(0.5, 3.0, NUM_NUMERIC),
            crosses,
            cross_vectors,
            -0.6,
        )

    def logits(self, columns: Columns) -> np.ndarray:
        """The hidden model's logit for each row (the Bayes-optimal score)."""
        logit = np.full(len(columns["label"]), self.bias, dtype=np.float64)
        for f in range(len(self.vocabulary_sizes)):
            logit += self.id_weights[f][columns[f"C{f + 1}"]]
        numeric = np.stack([columns[f"I{j + 1}"] for j in range(NUM_NUMERIC)], axis=1)
        logit += (np.log1p(numeric) - self.numeric_log_means) @ self.numeric_weights
        for a, b in self.crosses:
            logit += np.sum(
                self.cross_vectors[a][columns[f"C{a + 1}"]] * self.cross_vectors[b][columns[f"C{b + 1}"]], axis=1
            )
        return logit


def _vocabulary_sizes(vocabulary_sizes: Union[int, Sequence[int]]) -> tuple:
    sizes = (vocabulary_sizes,) * NUM_CATEGORICAL if np.isscalar(vocabulary_sizes) else tuple(vocabulary_sizes)
    if len(sizes) != NUM_CATEGORICAL or min(sizes) < 2:
        raise ValueError(f"vocabulary_sizes must be an int >= 2 or {NUM_CATEGORICAL} of them, got {vocabulary_sizes}")
    return tuple(int(s) for s in sizes)


def iter_synthetic_ctr(
    num_examples: int,
    vocabulary_sizes: Union[int, Sequence[int]] = 100_000,
    zipf_exponent: float = 1.05,
    num_crosses: int = 6,
    cross_dim: int = 4,
    cross_strength: float = 1.0,
    seed: int = 0,
    chunk_size: int = 65536,
) -> Iterator[Columns]:
    """Yields chunks of ``synthetic_ctr`` rows (see there)."""
    _check_positive(num_examples=num_examples, chunk_size=chunk_size)
    sizes = _vocabulary_sizes(vocabulary_sizes)
    if not 0 <= num_crosses <= NUM_CATEGORICAL // 2:
        raise ValueError(f"num_crosses must be in [0, {NUM_CATEGORICAL // 2}], got {num_crosses}")
    world = CtrWorld.make(sizes, zipf_exponent, num_crosses, cross_dim, cross_strength, seed)
    for chunk, start in enumerate(range(0, num_examples, chunk_size)):
        rng = np.random.default_rng([seed, 1 + chunk])
        count = min(chunk_size, num_examples - start)
        columns: Columns = {"label": np.zeros(count, dtype=np.float32)}
        for j in range(NUM_NUMERIC):
            columns[f"I{j + 1}"] = np.floor(
                np.expm1(rng.normal(world.numeric_log_means[j], 1.0, count).clip(0))
            ).astype(np.float32)
        for f in range(NUM_CATEGORICAL):
            ranks = np.minimum(np.searchsorted(world.id_cdfs[f], rng.random(count)), sizes[f] - 1)
            columns[f"C{f + 1}"] = world.id_permutations[f][ranks]
        columns["label"] = (rng.random(count) < 1 / (1 + np.exp(-world.logits(columns)))).astype(np.float32)
        yield columns


def synthetic_ctr(
    num_examples: int,
    vocabulary_sizes: Union[int, Sequence[int]] = 100_000,
    zipf_exponent: float = 1.05,
    num_crosses: int = 6,
    cross_dim: int = 4,
    cross_strength: float = 1.0,
    seed: int = 0,
    chunk_size: int = 65536,
) -> Columns:
    """Criteo-schema CTR rows labelled by a hidden logistic model with feature crosses.

    Columns: ``I1..I13`` (float32 counts, heavy-tailed), ``C1..C26`` (int64 ids, Zipf
    distributed with exponent ``zipf_exponent`` over each field's vocabulary, ids permuted
    so popularity is not id order), ``label`` (float32 0/1). The label is Bernoulli of
    ``sigmoid(bias + sum_f w_f[C_f] + a . (log1p(I) - m) + sum_(f,g) <v_f[C_f], v_g[C_g]>)``
    over ``num_crosses`` random field pairs: a linear model cannot capture the crosses.

    Example::

        rows = synthetic_ctr(1000, vocabulary_sizes=50, seed=3)
        rows["C1"].dtype  # -> int64
    """
    return _concat(
        iter_synthetic_ctr(
            num_examples, vocabulary_sizes, zipf_exponent, num_crosses, cross_dim, cross_strength, seed, chunk_size
        )
    )


def synthetic_ctr_world(
    vocabulary_sizes: Union[int, Sequence[int]] = 100_000,
    zipf_exponent: float = 1.05,
    num_crosses: int = 6,
    cross_dim: int = 4,
    cross_strength: float = 1.0,
    seed: int = 0,
) -> CtrWorld:
    """The hidden model behind ``synthetic_ctr`` with the same arguments (for Bayes-optimal scores)."""
    return CtrWorld.make(
        _vocabulary_sizes(vocabulary_sizes), zipf_exponent, num_crosses, cross_dim, cross_strength, seed
    )


def criteo_feature_spec():
    """The ``FeatureSpec`` of ``synthetic_ctr`` columns (unfitted): 13 numeric, 26 int64 categorical."""
    from tfrecs.data.feature_spec import Feature, FeatureSpec

    return FeatureSpec(
        [Feature(f"I{j + 1}", "numeric") for j in range(NUM_NUMERIC)]
        + [Feature(f"C{f + 1}", "categorical", dtype="int64") for f in range(NUM_CATEGORICAL)]
    )


# Sequences ---------------------------------------------------------------------------------------------
def iter_synthetic_sequences(
    num_users: int = 1000,
    num_items: int = 500,
    min_length: int = 10,
    max_length: int = 50,
    successors: int = 3,
    follow_probability: float = 0.8,
    popularity_exponent: float = 1.0,
    seed: int = 0,
    chunk_users: int = 8192,
) -> Iterator[Columns]:
    """Yields interaction chunks of ``synthetic_sequences`` (see there)."""
    _check_positive(
        num_users=num_users, num_items=num_items, min_length=min_length, successors=successors, chunk_users=chunk_users
    )
    if max_length < min_length:
        raise ValueError(f"max_length ({max_length}) must be >= min_length ({min_length})")
    if not 0 <= follow_probability <= 1:
        raise ValueError(f"follow_probability must be in [0, 1], got {follow_probability}")
    world_rng = np.random.default_rng([seed, 0x5E0])
    successor_table = world_rng.integers(0, num_items, size=(num_items, successors))
    successor_cdf = np.cumsum(world_rng.dirichlet(np.ones(successors), size=num_items), axis=1)
    popularity_cdf = np.cumsum(_zipf_probabilities(num_items, popularity_exponent)[world_rng.permutation(num_items)])
    for chunk, first_user in enumerate(range(0, num_users, chunk_users)):
        rng = np.random.default_rng([seed, 1 + chunk])
        count = min(chunk_users, num_users - first_user)
        lengths = rng.integers(min_length, max_length + 1, size=count)
        steps = np.empty((count, max_length), dtype=np.int64)
        steps[:, 0] = np.minimum(np.searchsorted(popularity_cdf, rng.random(count)), num_items - 1)
        for t in range(1, max_length):
            previous = steps[:, t - 1]
            choice = (rng.random((count, 1)) > successor_cdf[previous]).sum(axis=1).clip(max=successors - 1)
            follow = successor_table[previous, choice]
            jump = np.minimum(np.searchsorted(popularity_cdf, rng.random(count)), num_items - 1)
            steps[:, t] = np.where(rng.random(count) < follow_probability, follow, jump)
        keep = np.arange(max_length)[None, :] < lengths[:, None]
        users = np.repeat(np.arange(first_user, first_user + count, dtype=np.int64), max_length).reshape(
            count, max_length
        )
        times = np.broadcast_to(1_000_000 + np.arange(max_length, dtype=np.int64), (count, max_length))
        yield {
            "user_id": users[keep],
            "item_id": steps[keep],
            "rating": np.ones(int(keep.sum()), dtype=np.float32),
            "timestamp": times[keep],
        }


def synthetic_sequences(
    num_users: int = 1000,
    num_items: int = 500,
    min_length: int = 10,
    max_length: int = 50,
    successors: int = 3,
    follow_probability: float = 0.8,
    popularity_exponent: float = 1.0,
    seed: int = 0,
    chunk_users: int = 8192,
) -> RecDataset:
    """Item sequences from a planted Markov chain, as a ``RecDataset`` with timestamps.

    Each user's first item is drawn by popularity (Zipf); each next item is, with
    probability ``follow_probability``, one of the previous item's ``successors`` fixed
    successors (with item-specific Dirichlet weights), otherwise a popularity draw. So the
    next item is predictable from the last one, and a sequential model can learn it.

    Example::

        ds = synthetic_sequences(num_users=100, num_items=50, seed=2)
    """
    interactions = _concat(
        iter_synthetic_sequences(
            num_users,
            num_items,
            min_length,
            max_length,
            successors,
            follow_probability,
            popularity_exponent,
            seed,
            chunk_users,
        )
    )
    return RecDataset(
        "synthetic-sequences",
        interactions,
        {"user_id": np.arange(num_users, dtype=np.int64)},
        {"item_id": np.arange(num_items, dtype=np.int64)},
    )
