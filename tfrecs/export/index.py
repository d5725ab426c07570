"""Top-k candidate indexes for exports: ScaNN (approximate) or brute force (exact).

``build_index`` embeds the candidates' index in a ``CandidateIndex`` module that maps query
embeddings to the top rows, their raw item ids and scores. It handles exclusions (ids the
caller names never come back) and short ScaNN answers (fewer neighbours found than asked),
so every answer has exactly the asked number of columns; missing places hold the padding
id (``""`` / ``-1``) and the lowest float32 score.

ScaNN parameters come from the candidate count (``tune_scann``): about sqrt(n) leaves, a
fixed share of them searched, and an exact re-scoring ("reordering") of the best
approximate candidates; each can be overridden.

Example::

    index, report = build_index(embeddings, item_ids, kind="scann", k=10)
    scores, ids, rows, valid = index.search(query_embeddings, 10)
    report.build_seconds, report.params
"""

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

INDEX_KINDS = ("scann", "brute_force")
LOWEST_SCORE = float(np.finfo(np.float32).min)
# Share of the leaves a query searches, and minimum points those leaves should hold
# (as a multiple of the re-scored candidates), chosen on benchmarks/ann.py.
_SEARCH_SHARE = 0.05
_MIN_SEARCHED_POINTS_FACTOR = 4


@dataclass
class ScannParams:
    """ScaNN index parameters (see ``tfrs.layers.factorized_top_k.ScaNN``).

    Attributes:
        num_leaves: partitions of the candidate set (about sqrt(n)).
        num_leaves_to_search: partitions scored per query.
        num_reordering_candidates: approximate winners re-scored exactly (None: none).
        dimensions_per_block: asymmetric-hashing compression (2 is ScaNN's default).
        training_iterations: k-means iterations of the partitioning.
    """

    num_leaves: int
    num_leaves_to_search: int
    num_reordering_candidates: Optional[int]
    dimensions_per_block: int = 2
    training_iterations: int = 12


def tune_scann(num_candidates: int, k: int, **overrides: Any) -> ScannParams:
    """ScaNN parameters for ``num_candidates`` candidates and top-``k`` answers.

    Rules: ``num_leaves = round(sqrt(n))``; ``num_reordering_candidates = max(100, 10 k)``
    (at most n); ``num_leaves_to_search`` = 5% of the leaves, raised until the searched
    leaves hold about 4x the re-scored candidates (capped at all leaves).

    Args:
        num_candidates: catalogue size n.
        k: answers per query.
        **overrides: any ``ScannParams`` field, e.g. ``num_leaves=2000``.

    Returns:
        ScannParams.

    Raises:
        ValueError: an unknown override, or inconsistent values (names the parameter).

    Example::

        tune_scann(1_000_000, 10)   # ScannParams(num_leaves=1000, num_leaves_to_search=50, ...)
    """
    names = {f.name for f in fields(ScannParams)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown ScaNN parameter(s) {unknown}; valid: {sorted(names)}")
    n = int(num_candidates)
    leaves = int(overrides.get("num_leaves") or max(1, round(math.sqrt(n))))
    reorder = overrides.get("num_reordering_candidates", min(n, max(100, 10 * k)))
    wanted_points = _MIN_SEARCHED_POINTS_FACTOR * (reorder or k)
    searched = max(math.ceil(leaves * _SEARCH_SHARE), math.ceil(wanted_points * leaves / max(n, 1)))
    params = ScannParams(
        num_leaves=leaves,
        num_leaves_to_search=int(overrides.get("num_leaves_to_search") or min(leaves, searched)),
        num_reordering_candidates=None if reorder is None else int(reorder),
        dimensions_per_block=int(overrides.get("dimensions_per_block", 2)),
        training_iterations=int(overrides.get("training_iterations", 12)),
    )
    if not 1 <= params.num_leaves <= n:
        raise ValueError(f"num_leaves={params.num_leaves} must be between 1 and the candidate count {n}.")
    if not 1 <= params.num_leaves_to_search <= params.num_leaves:
        raise ValueError(
            f"num_leaves_to_search={params.num_leaves_to_search} must be between 1 and num_leaves={params.num_leaves}."
        )
    if params.num_reordering_candidates is not None and params.num_reordering_candidates < k:
        raise ValueError(f"num_reordering_candidates={params.num_reordering_candidates} must be at least k={k}.")
    return params


class ScaNNTopK(tfrs.layers.factorized_top_k.ScaNN):
    """TFRS's ScaNN layer, asking ScaNN to re-score at least as many candidates as it returns.

    TFRS's own ``call`` keeps ScaNN's default pre-reorder count, so asking for more answers
    than ``num_reordering_candidates`` (k plus exclusions) silently returned fewer columns.
    """

    def call(self, queries: tf.Tensor, k: Optional[Any] = None) -> Tuple[tf.Tensor, tf.Tensor]:
        from scann.scann_ops.py import scann_ops

        k = self._k if k is None else k
        if self._serialized_searcher is None:
            raise ValueError("build the ScaNN index with index() before querying it.")
        searcher = scann_ops.searcher_from_module(self._serialized_searcher)
        pre_reorder = None
        if self._num_reordering_candidates is not None:
            pre_reorder = tf.maximum(tf.cast(k, tf.int32), self._num_reordering_candidates)
        result = searcher.search_batched_parallel(queries, final_num_neighbors=k, pre_reorder_num_neighbors=pre_reorder)
        return result.distances, result.indices


@dataclass
class IndexReport:
    """What ``build_index`` built: kind, candidate count, dimension, parameters, build seconds."""

    kind: str
    num_candidates: int
    dimension: int
    build_seconds: float
    params: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _padding_id(dtype: tf.DType):
    return "" if dtype == tf.string else -1


class CandidateIndex(tf.Module):
    """A built index plus the raw ids of its rows; ``search`` is used inside serving functions.

    Args:
        layer: an indexed ``ScaNNTopK`` or ``tfrs.layers.factorized_top_k.BruteForce``.
        item_ids: raw ids in candidate row order (string or int64).
    """

    def __init__(self, layer: tf.Module, item_ids: np.ndarray, name: str = "candidate_index"):
        super().__init__(name=name)
        self.layer = layer
        ids = tf.constant(item_ids if np.asarray(item_ids).dtype.kind not in "iu" else np.asarray(item_ids, np.int64))
        self.item_ids = tf.Variable(ids, trainable=False, name="item_ids")
        self.num_candidates = int(ids.shape[0])

    @property
    def id_dtype(self) -> tf.DType:
        return self.item_ids.dtype

    def search(self, queries: tf.Tensor, num: int, exclude_ids: Optional[tf.Tensor] = None):
        """Top ``num`` candidates per query, skipping ids in ``exclude_ids``.

        Args:
            queries: ``[batch, dim]`` float32 query embeddings.
            num: answers per query (a Python int, at most the candidate count).
            exclude_ids: ``[batch or 1, m]`` raw ids never to return (``[1, m]`` applies to
                every query).

        Returns:
            (scores ``[batch, num]`` float32, ids ``[batch, num]``, rows ``[batch, num]`` int32,
            valid ``[batch, num]`` bool). Invalid places (catalogue exhausted by exclusions, or
            ScaNN found fewer neighbours) hold the padding id, row 0 and the lowest score.
        """
        extra = tf.shape(exclude_ids)[1] if exclude_ids is not None else 0
        fetch = tf.minimum(num + extra, self.num_candidates)
        scores, rows = self.layer(queries, k=fetch)
        scores = tf.cast(scores, tf.float32)
        rows = tf.cast(rows, tf.int32)
        valid = tf.logical_not(tf.math.is_nan(scores))
        rows = tf.where(valid, rows, 0)
        ids = tf.gather(self.item_ids, rows)
        if exclude_ids is not None:
            excluded = tf.reduce_any(tf.equal(ids[:, :, None], exclude_ids[:, None, :]), axis=-1)
            valid = tf.logical_and(valid, tf.logical_not(excluded))
        # Pad short answers to `num` columns, then keep the best `num` valid places.
        missing = tf.maximum(num - tf.shape(scores)[1], 0)
        pad = [[0, 0], [0, missing]]
        scores = tf.pad(tf.where(valid, scores, LOWEST_SCORE), pad, constant_values=LOWEST_SCORE)
        valid = tf.pad(valid, pad, constant_values=False)
        rows = tf.pad(rows, pad)
        scores, order = tf.math.top_k(scores, k=num)
        rows = tf.gather(rows, order, batch_dims=1)
        valid = tf.gather(valid, order, batch_dims=1)
        ids = tf.where(valid, tf.gather(self.item_ids, rows), _padding_id(self.id_dtype))
        rows = tf.where(valid, rows, 0)
        return scores, ids, rows, valid


def build_index(
    embeddings: np.ndarray,
    item_ids: np.ndarray,
    kind: str = "scann",
    k: int = 10,
    scann: Optional[Mapping[str, Any]] = None,
) -> Tuple[CandidateIndex, IndexReport]:
    """Builds a ``CandidateIndex`` over candidate embeddings.

    Args:
        embeddings: ``[n, dim]`` float32 candidate embeddings, in catalogue order.
        item_ids: ``[n]`` raw ids of the same rows (string or int64).
        kind: ``"scann"`` or ``"brute_force"``.
        k: answers per query the export will return (ScaNN's default neighbour count).
        scann: overrides of ``tune_scann``'s parameters.

    Returns:
        (CandidateIndex, IndexReport with the build time in seconds and the parameters).

    Raises:
        ValueError: unknown kind, mismatched rows, k larger than the candidate count, bad
            ScaNN parameters.
    """
    if kind not in INDEX_KINDS:
        raise ValueError(f"index={kind!r} is not an index kind; choose one of {', '.join(INDEX_KINDS)}.")
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2:
        raise ValueError(f"candidate embeddings must be [num_candidates, dim], got shape {embeddings.shape}.")
    n = embeddings.shape[0]
    if len(item_ids) != n:
        raise ValueError(f"item_ids has {len(item_ids)} rows but the candidate embeddings have {n}.")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of candidates ({n}).")
    if scann and kind != "scann":
        raise ValueError(f"ScaNN parameters {sorted(scann)} were given for index={kind!r}; drop them or use 'scann'.")
    start = time.perf_counter()
    if kind == "scann":
        params = tune_scann(n, k, **dict(scann or {}))
        layer = ScaNNTopK(k=k, **asdict(params), name="scann")
        layer.index(tf.constant(embeddings))
        params_dict = asdict(params)
    else:
        layer = tfrs.layers.factorized_top_k.BruteForce(k=k, name="brute_force")
        layer.index(tf.constant(embeddings))
        params_dict = {}
    seconds = time.perf_counter() - start
    report = IndexReport(
        kind=kind,
        num_candidates=n,
        dimension=int(embeddings.shape[1]),
        build_seconds=round(seconds, 3),
        params=params_dict,
    )
    return CandidateIndex(layer, np.asarray(item_ids)), report
