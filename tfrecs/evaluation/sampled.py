"""Sampled-negatives protocol: rank each test positive among N sampled negatives.

Each (user, positive item) pair becomes one row whose candidates are the positive plus
its N negatives; the full-ranking core ranks the row with every other item at -inf (as
RecBole does, so ties break by lower item index). Rows are averaged per user, then over
users.
"""

from __future__ import annotations

import numpy as np

from tfrecs.evaluation.full_ranking import RaggedIndices, RankingTargets, ScoreFn, check_targets, rank_rows
from tfrecs.evaluation.ranking_metrics import ranking_metrics_from_hits, validate_ks

DISTRIBUTIONS = ("uniform", "popularity")
_MAX_KEYS_PER_DRAW = 1 << 22  # bounds the [rows, pool] random-key block drawn at once


def sample_negatives(
    targets: RankingTargets, num_negatives: int = 100, distribution: str = "uniform", item_counts=None, seed: int = 0
) -> np.ndarray:
    """Draws ``num_negatives`` distinct negatives for every (user, positive) pair.

    Negatives come from the items the user never interacted with (neither a positive nor
    an exclusion in ``targets``). Per row they are drawn without replacement, uniformly or
    successively proportional to ``item_counts`` (Efraimidis-Spirakis keys), from a NumPy
    ``Generator`` seeded with ``seed``: the same seed gives the same negatives.

    Args:
        targets: the ``RankingTargets`` whose pairs get negatives.
        num_negatives: negatives per pair, e.g. 100.
        distribution: ``"uniform"`` or ``"popularity"``.
        item_counts: ``[num_items]`` non-negative weights (e.g. training interaction
            counts); required for ``"popularity"``, items with weight 0 are never drawn.
            Checked but unused for ``"uniform"``.
        seed: seed of the random generator.

    Returns:
        int64 array ``[targets.num_pairs, num_negatives]``; row ``i`` belongs to pair
        ``(targets.pair_users[i], targets.positives.values[i])``; each row sorted.

    Raises:
        ValueError: on a bad ``num_negatives``, ``distribution`` or ``item_counts``, or if
            a user has fewer than ``num_negatives`` items to draw from.

    Example:
        >>> targets = RankingTargets.from_pairs([0, 0], [1, 2], num_items=6)
        >>> sample_negatives(targets, num_negatives=3, seed=0).shape
        (2, 3)
    """
    check_targets(targets)
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, (int, np.integer)) or num_negatives <= 0:
        raise ValueError(f"num_negatives must be a positive int; got {num_negatives!r}")
    weights = _sampling_weights(distribution, item_counts, targets.num_items)
    rng = np.random.default_rng(seed)
    negatives = np.empty((targets.num_pairs, num_negatives), dtype=np.int64)
    interacted = np.zeros(targets.num_items, dtype=bool)
    for r, user in enumerate(targets.users):
        interacted[:] = False
        interacted[targets.positives.row(r)] = True
        interacted[targets.exclusions.row(r)] = True
        pool = np.flatnonzero(~interacted if weights is None else ~interacted & (weights > 0))
        if pool.size < num_negatives:
            which = "non-interacted items" if weights is None else "non-interacted items with item_counts > 0"
            raise ValueError(f"user {user} has only {pool.size} {which}, fewer than num_negatives={num_negatives}")
        pool_weights = None if weights is None else weights[pool]
        first, last = targets.positives.row_splits[r], targets.positives.row_splits[r + 1]
        rows_per_draw = max(1, _MAX_KEYS_PER_DRAW // pool.size)
        for start in range(first, last, rows_per_draw):
            stop = min(start + rows_per_draw, last)
            negatives[start:stop] = _draw_without_replacement(rng, pool, pool_weights, stop - start, num_negatives)
    return negatives


def evaluate_sampled(
    score_fn: ScoreFn, targets: RankingTargets, negatives, ks=(10,), batch_size: int = 1024
) -> dict[str, float]:
    """Ranks each positive among its sampled negatives; averages per user, then over users.

    Args:
        score_fn: maps an int64 ``[B]`` tensor of user indices to ``[B, num_items]`` scores.
        targets: the ``RankingTargets`` the negatives were drawn for.
        negatives: int ``[targets.num_pairs, N]`` from ``sample_negatives``; distinct items
            per row, none equal to the row's positive.
        ks: cut-offs, e.g. ``(10,)``.
        batch_size: pairs ranked per batch.

    Returns:
        Dict ``"hr@K", "recall@K", "precision@K", "mrr@K", "ndcg@K" -> float`` for each K.

    Raises:
        ValueError: on bad ``ks``, ``negatives`` of the wrong shape or with out-of-range,
            repeated or positive items, ``score_fn`` returning the wrong shape, NaN scores.

    Example:
        >>> targets = RankingTargets.from_pairs([0], [1], num_items=4)
        >>> scores = tf.constant([[0.3, 0.9, 0.5, 0.1]])
        >>> evaluate_sampled(lambda u: tf.gather(scores, u), targets, [[0, 2]], ks=(1,))["hr@1"]
        1.0
    """
    ks = validate_ks(ks)
    check_targets(targets)
    pair_items = targets.positives.values
    negatives = _check_negatives(negatives, pair_items, targets.num_items)
    num_pairs, candidates_per_row = len(pair_items), negatives.shape[1] + 1
    candidates = RaggedIndices(
        values=np.concatenate([pair_items[:, None], negatives], axis=1).ravel(),
        row_splits=np.arange(num_pairs + 1, dtype=np.int64) * candidates_per_row,
    )
    one_positive_per_row = RaggedIndices(pair_items, np.arange(num_pairs + 1, dtype=np.int64))
    hits = rank_rows(
        score_fn,
        targets.pair_users,
        candidates,
        "candidates",
        one_positive_per_row,
        targets.num_items,
        max(ks),
        batch_size,
    )
    per_pair = ranking_metrics_from_hits(hits, np.ones(num_pairs, dtype=np.int64), ks)
    user_of_pair = np.repeat(np.arange(len(targets.users)), targets.positives.lengths)
    pairs_per_user = targets.positives.lengths
    return {
        name: float(np.mean(np.bincount(user_of_pair, values) / pairs_per_user)) for name, values in per_pair.items()
    }


def _draw_without_replacement(rng, pool, pool_weights, num_rows, num_draws) -> np.ndarray:
    """``num_rows`` rows of ``num_draws`` distinct items of ``pool``, weighted if given.

    Each item gets the key Exp(1) / weight; the ``num_draws`` smallest keys are a sample
    drawn successively with probability proportional to weight (uniform without weights).
    """
    keys = rng.standard_exponential((num_rows, pool.size))
    if pool_weights is not None:
        keys /= pool_weights
    chosen = np.argpartition(keys, num_draws - 1, axis=1)[:, :num_draws]
    return np.sort(pool[chosen], axis=1)


def _sampling_weights(distribution, item_counts, num_items):
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}; got {distribution!r}")
    if item_counts is None:
        if distribution == "popularity":
            raise ValueError("distribution='popularity' needs item_counts of shape [num_items]")
        return None
    weights = np.asarray(item_counts, dtype=np.float64)
    if weights.shape != (num_items,):
        raise ValueError(f"item_counts must have shape ({num_items},); got {weights.shape}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("item_counts must be finite and non-negative")
    if distribution == "uniform":
        return None
    if not weights.any():
        raise ValueError("item_counts are all zero: nothing to sample")
    return weights


def _check_negatives(negatives, pair_items, num_items) -> np.ndarray:
    negatives = np.asarray(negatives)
    if negatives.ndim != 2 or negatives.shape[0] != len(pair_items) or negatives.shape[1] == 0:
        raise ValueError(
            f"negatives must have shape [num_pairs={len(pair_items)}, num_negatives>=1]; got {negatives.shape}"
        )
    if not np.issubdtype(negatives.dtype, np.integer):
        raise ValueError(f"negatives must hold integer item indices; got dtype {negatives.dtype}")
    if ((negatives < 0) | (negatives >= num_items)).any():
        raise ValueError(f"negatives holds an item outside [0, num_items={num_items})")
    if (negatives == pair_items[:, None]).any():
        raise ValueError("negatives holds a row's own positive item")
    sorted_rows = np.sort(negatives, axis=1)
    if (sorted_rows[:, 1:] == sorted_rows[:, :-1]).any():
        raise ValueError("negatives repeats an item within a row; negatives must be distinct per row")
    return negatives.astype(np.int64)
