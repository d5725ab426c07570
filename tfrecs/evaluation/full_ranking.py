"""Full-ranking evaluation: score every item for each user, mask known items, take top K.

The ranking core (``rank_rows``) works on *rows*: a row is scored with its user's scores,
restricted by a ragged list of items (masked out, or the only candidates) and judged
against a ragged list of positives. Full ranking uses one row per user; the sampled
protocol (``tfrecs.evaluation.sampled``) uses one row per (user, positive) pair.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf

from tfrecs.evaluation.ranking_metrics import ranking_metrics_from_hits, validate_ks

ScoreFn = Callable[[tf.Tensor], tf.Tensor]


@dataclass(frozen=True)
class RaggedIndices:
    """Per-row lists of int indices, stored flat with row splits (CSR layout).

    Row ``r`` holds ``values[row_splits[r]:row_splits[r + 1]]``.
    """

    values: np.ndarray
    row_splits: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """Number of entries in each row."""
        return np.diff(self.row_splits)

    def __len__(self) -> int:
        return len(self.row_splits) - 1

    def row(self, r: int) -> np.ndarray:
        """The indices of row ``r``."""
        return self.values[self.row_splits[r] : self.row_splits[r + 1]]

    def slice_rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(row position relative to ``start``, index) for every entry of rows [start, stop)."""
        lengths = np.diff(self.row_splits[start : stop + 1])
        local_rows = np.repeat(np.arange(stop - start, dtype=np.int64), lengths)
        return local_rows, self.values[self.row_splits[start] : self.row_splits[stop]]

    def to_tensor(self) -> tf.RaggedTensor:
        """The same lists as an int64 ``tf.RaggedTensor``."""
        return tf.RaggedTensor.from_row_splits(self.values, self.row_splits)


@dataclass(frozen=True)
class RankingTargets:
    """Test positives and masked items per evaluated user.

    Attributes:
        users: int64 ``[U]``, sorted unique users with at least one positive.
        positives: ``RaggedIndices`` aligned with ``users``; sorted unique items per user.
        exclusions: ``RaggedIndices`` aligned with ``users``; items masked when ranking
            (training, and when testing validation, items). Sorted unique per user.
        num_items: catalogue size; items are ``0 .. num_items - 1``.
    """

    users: np.ndarray
    positives: RaggedIndices
    exclusions: RaggedIndices
    num_items: int

    @classmethod
    def from_pairs(cls, users, items, exclude_users=None, exclude_items=None, *, num_items: int) -> "RankingTargets":
        """Builds targets from (user, item) positive pairs and (user, item) pairs to mask.

        Duplicate pairs are collapsed. Exclusions of users without positives are dropped.

        Args:
            users: int user index per positive pair.
            items: int item index per positive pair.
            exclude_users: int user index per pair to mask (or None for no masking).
            exclude_items: int item index per pair to mask (or None).
            num_items: catalogue size.

        Returns:
            A ``RankingTargets``.

        Raises:
            ValueError: on empty positives, mismatched lengths, non-integer or negative
                indices, or an item outside ``[0, num_items)``.

        Example:
            >>> t = RankingTargets.from_pairs([0, 0, 2], [5, 1, 3], [0], [4], num_items=6)
            >>> t.users.tolist(), t.positives.row(0).tolist(), t.exclusions.row(1).tolist()
            ([0, 2], [1, 5], [])
        """
        if isinstance(num_items, bool) or not isinstance(num_items, (int, np.integer)) or num_items <= 0:
            raise ValueError(f"num_items must be a positive int; got {num_items!r}")
        num_items = int(num_items)
        users, items = _index_pairs("users", users, "items", items, num_items)
        if users.size == 0:
            raise ValueError("users and items are empty: there are no positives to evaluate")
        if (exclude_users is None) != (exclude_items is None):
            raise ValueError("pass exclude_users and exclude_items together, or neither")
        if exclude_users is None:
            exclude_users = exclude_items = np.zeros(0, np.int64)
        exclude_users, exclude_items = _index_pairs(
            "exclude_users", exclude_users, "exclude_items", exclude_items, num_items
        )

        evaluated_users = np.unique(users)
        keep = np.isin(exclude_users, evaluated_users)
        return cls(
            users=evaluated_users,
            positives=_group_by_user(users, items, evaluated_users),
            exclusions=_group_by_user(exclude_users[keep], exclude_items[keep], evaluated_users),
            num_items=num_items,
        )

    @property
    def num_pairs(self) -> int:
        """Number of distinct (user, positive item) pairs."""
        return len(self.positives.values)

    @property
    def pair_users(self) -> np.ndarray:
        """User of each (user, positive) pair, in the order of ``positives.values``."""
        return np.repeat(self.users, self.positives.lengths)


def evaluate_full_ranking(
    score_fn: ScoreFn, targets: RankingTargets, ks=(10, 20), batch_size: int = 1024
) -> dict[str, float]:
    """Ranks all items for every user in ``targets`` and averages top-K metrics over users.

    Each user's excluded items get score -inf; ``tf.math.top_k`` ranks the rest, ties
    broken by lower item index first. An excluded or -inf item is never a hit. A K larger
    than the catalogue ranks the whole catalogue, but Precision@K still divides by K.

    Args:
        score_fn: maps an int64 ``[B]`` tensor of user indices to ``[B, num_items]`` scores.
        targets: the ``RankingTargets`` to evaluate.
        ks: cut-offs, e.g. ``(10, 20)``.
        batch_size: users scored per call of ``score_fn``.

    Returns:
        Dict ``"hr@K", "recall@K", "precision@K", "mrr@K", "ndcg@K" -> float`` for each K,
        each the mean over ``targets.users``.

    Raises:
        ValueError: on empty or non-positive ``ks``, a bad ``batch_size``, ``score_fn``
            returning the wrong shape, or NaN scores.

    Example:
        >>> targets = RankingTargets.from_pairs([0, 1], [2, 0], num_items=3)
        >>> scores = tf.constant([[0.1, 0.2, 0.9], [0.5, 0.9, 0.1]])
        >>> evaluate_full_ranking(lambda u: tf.gather(scores, u), targets, ks=(1,))["hr@1"]
        0.5
    """
    ks = validate_ks(ks)
    check_targets(targets)
    hits = rank_rows(
        score_fn,
        targets.users,
        targets.exclusions,
        "excluded",
        targets.positives,
        targets.num_items,
        max(ks),
        batch_size,
    )
    per_user = ranking_metrics_from_hits(hits, targets.positives.lengths, ks)
    return {name: float(values.mean()) for name, values in per_user.items()}


def rank_rows(
    score_fn: ScoreFn,
    row_users: np.ndarray,
    listed: RaggedIndices,
    listed_are: str,
    positives: RaggedIndices,
    num_items: int,
    max_k: int,
    batch_size: int,
) -> np.ndarray:
    """Hit matrix ``[rows, max_k]`` of each row's top ``max_k`` items.

    Args:
        score_fn: user indices ``[B]`` -> scores ``[B, num_items]``.
        row_users: user of each row, sorted (rows of one user are contiguous).
        listed: per-row item lists; ``listed_are`` says what they mean.
        listed_are: ``"excluded"`` (listed items get -inf) or ``"candidates"`` (every
            item not listed gets -inf).
        positives: per-row positive items.
        num_items: catalogue size.
        max_k: number of ranked positions to return (padded with misses past the catalogue).
        batch_size: rows per batch.
    """
    if listed_are not in ("excluded", "candidates"):
        raise ValueError(f"listed_are must be 'excluded' or 'candidates'; got {listed_are!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    batch_hits = _batch_hits_fn(num_items, max_k, listed_are == "candidates")
    num_rows = len(row_users)
    hits = np.zeros((num_rows, max_k), dtype=bool)
    for start in range(0, num_rows, batch_size):
        stop = min(start + batch_size, num_rows)
        batch_users, row_to_user = np.unique(row_users[start:stop], return_inverse=True)
        user_scores = _score_users(score_fn, batch_users, num_items)
        batch, has_nan = batch_hits(
            user_scores,
            row_to_user.astype(np.int32),
            *listed.slice_rows(start, stop),
            *positives.slice_rows(start, stop),
        )
        if has_nan:
            raise ValueError(f"score_fn returned NaN scores for a batch of users {batch_users[:5].tolist()}...")
        hits[start:stop] = batch.numpy()
    return hits


@functools.lru_cache(maxsize=None)
def _batch_hits_fn(num_items: int, max_k: int, listed_are_candidates: bool):
    """A traced function: (user scores, ragged lists) -> (hits [rows, max_k], any NaN)."""
    k = min(max_k, num_items)
    index_vector = tf.TensorSpec([None], tf.int64)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, num_items], tf.float32),
            tf.TensorSpec([None], tf.int32),
            index_vector,
            index_vector,
            index_vector,
            index_vector,
        ]
    )
    def batch_hits(user_scores, row_to_user, listed_rows, listed_items, positive_rows, positive_items):
        has_nan = tf.reduce_any(tf.math.is_nan(user_scores))
        # row_to_user comes from np.unique of sorted users: as many users as rows means identity
        scores = tf.cond(
            tf.shape(user_scores)[0] == tf.shape(row_to_user)[0],
            lambda: user_scores,
            lambda: tf.gather(user_scores, row_to_user),
        )
        shape = tf.stack([tf.shape(scores, out_type=tf.int64)[0], num_items])
        listed = _dense_mask(listed_rows, listed_items, shape)
        keep = listed if listed_are_candidates else tf.logical_not(listed)
        masked_scores = tf.where(keep, scores, tf.constant(-np.inf, tf.float32))
        top_scores, top_items = tf.math.top_k(masked_scores, k=k, sorted=True)
        is_positive = _dense_mask(positive_rows, positive_items, shape)
        hits = tf.gather(is_positive, top_items, batch_dims=1) & (top_scores > -np.inf)
        return tf.pad(hits, [[0, 0], [0, max_k - k]]), has_nan

    return batch_hits


def _dense_mask(rows, items, shape):
    """Bool ``shape`` tensor that is True at each (rows[i], items[i])."""
    indices = tf.stack([rows, items], axis=1)
    return tf.tensor_scatter_nd_update(tf.zeros(shape, tf.bool), indices, tf.ones_like(rows, dtype=tf.bool))


def _score_users(score_fn: ScoreFn, users: np.ndarray, num_items: int) -> tf.Tensor:
    scores = tf.convert_to_tensor(score_fn(tf.constant(users, tf.int64)))
    expected = (len(users), num_items)
    if tuple(scores.shape) != expected:
        raise ValueError(
            f"score_fn must return scores of shape [batch, num_items] = {list(expected)} for a "
            f"batch of {len(users)} users; got shape {scores.shape.as_list()}"
        )
    if not (scores.dtype.is_floating or scores.dtype.is_integer):
        raise ValueError(f"score_fn must return numeric scores; got dtype {scores.dtype.name}")
    return tf.cast(scores, tf.float32)


def check_targets(targets) -> None:
    if not isinstance(targets, RankingTargets):
        raise ValueError(
            f"targets must be a RankingTargets (see RankingTargets.from_pairs); got {type(targets).__name__}"
        )
    if len(targets.users) == 0:
        raise ValueError("targets has no users with positives: nothing to evaluate")


def _index_pairs(users_name, users, items_name, items, num_items):
    users = _index_array(users_name, users)
    items = _index_array(items_name, items)
    if len(users) != len(items):
        raise ValueError(f"{users_name} has {len(users)} entries but {items_name} has {len(items)}")
    if (users < 0).any():
        raise ValueError(f"{users_name} holds a negative index {users.min()}")
    bad = (items < 0) | (items >= num_items)
    if bad.any():
        raise ValueError(f"{items_name} holds index {items[bad][0]} outside [0, num_items={num_items})")
    return users, items


def _index_array(name, values) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {values.shape}")
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices; got dtype {values.dtype}")
    return values.astype(np.int64)


def _group_by_user(users: np.ndarray, items: np.ndarray, row_users: np.ndarray) -> RaggedIndices:
    """Sorted unique items of each user in ``row_users`` (sorted), as ragged rows."""
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    distinct = np.ones(len(users), dtype=bool)
    distinct[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    users, items = users[distinct], items[distinct]
    # every user in ``users`` is in ``row_users``, so row r ends where users <= row_users[r] end
    row_splits = np.concatenate([[0], np.searchsorted(users, row_users, side="right")])
    return RaggedIndices(values=items, row_splits=row_splits.astype(np.int64))
