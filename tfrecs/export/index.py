"""Top-k candidate indexes for exports: ScaNN (approximate) or brute force (exact).

``build_index`` embeds the candidates' index in a ``CandidateIndex`` module that maps query
embeddings to the top rows, their raw item ids and scores. It handles exclusions (ids the
caller names never come back) and short ScaNN answers (fewer neighbours found than asked),
so every answer has exactly the asked number of columns; missing places hold the padding
id (``""`` / ``-1``) and the lowest float32 score.

ScaNN parameters come from the candidate count (``tune_scann``): about sqrt(n) leaves, a
fixed share of them searched, anisotropic (score-aware) asymmetric hashing and an exact
re-scoring ("reordering") of the best approximate candidates; each can be overridden
(``export_retrieval(..., index_params={...})``, ``tfrecs export --index-param key=value``).
The searcher is built with ScaNN's own builder (``scann_ops.builder``), not TFRS's, which
cannot set the anisotropic threshold.

Example::

    index, report = build_index(embeddings, item_ids, kind="scann", k=10)
    scores, ids, rows, valid = index.search(query_embeddings, 10)
    report.build_seconds, report.params
"""

import math
import time
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
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
# Candidates re-scored exactly: at least this many, and this many per answer (benchmarks/ann.py
# --quick at 200k: 100 left recall@10 at 0.97 on clustered data and 0.90 on overlapping data;
# 250 reached 0.98 on clustered data at the same leaves).
_MIN_REORDER = 250
_REORDER_PER_ANSWER = 25
# ScaNN's recommended anisotropic threshold for dot products (ScaNN README); None / NaN: plain AH.
_ANISOTROPIC_THRESHOLD = 0.2


@dataclass
class ScannParams:
    """ScaNN index parameters (see ``tfrs.layers.factorized_top_k.ScaNN``).

    Attributes:
        num_leaves: partitions of the candidate set (about sqrt(n)).
        num_leaves_to_search: partitions scored per query.
        num_reordering_candidates: approximate winners re-scored exactly (None: none).
        dimensions_per_block: asymmetric-hashing compression (2 is ScaNN's default).
        training_iterations: k-means iterations of the partitioning.
        anisotropic_quantization_threshold: ScaNN's score-aware quantization loss threshold
            ``T`` (0.2 is ScaNN's advice for dot products); None: plain (isotropic) hashing.
    """

    num_leaves: int
    num_leaves_to_search: int
    num_reordering_candidates: Optional[int]
    dimensions_per_block: int = 2
    training_iterations: int = 12
    anisotropic_quantization_threshold: Optional[float] = _ANISOTROPIC_THRESHOLD


def tune_scann(num_candidates: int, k: int, **overrides: Any) -> ScannParams:
    """ScaNN parameters for ``num_candidates`` candidates and top-``k`` answers.

    Rules: ``num_leaves = round(sqrt(n))``; ``num_reordering_candidates = max(250, 25 k)``
    (at most n); ``num_leaves_to_search`` = 5% of the leaves, raised until the searched
    leaves hold about 4x the re-scored candidates (capped at all leaves);
    ``dimensions_per_block = 2``; ``anisotropic_quantization_threshold = 0.2``.

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
    reorder = overrides.get("num_reordering_candidates", min(n, max(_MIN_REORDER, _REORDER_PER_ANSWER * k)))
    wanted_points = _MIN_SEARCHED_POINTS_FACTOR * (reorder or k)
    searched = max(math.ceil(leaves * _SEARCH_SHARE), math.ceil(wanted_points * leaves / max(n, 1)))
    params = ScannParams(
        num_leaves=leaves,
        num_leaves_to_search=int(overrides.get("num_leaves_to_search") or min(leaves, searched)),
        num_reordering_candidates=None if reorder is None else int(reorder),
        dimensions_per_block=int(overrides.get("dimensions_per_block", 2)),
        training_iterations=int(overrides.get("training_iterations", 12)),
        anisotropic_quantization_threshold=_threshold(
            overrides.get("anisotropic_quantization_threshold", _ANISOTROPIC_THRESHOLD)
        ),
    )
    if not 1 <= params.num_leaves <= n:
        raise ValueError(f"num_leaves={params.num_leaves} must be between 1 and the candidate count {n}.")
    if not 1 <= params.num_leaves_to_search <= params.num_leaves:
        raise ValueError(
            f"num_leaves_to_search={params.num_leaves_to_search} must be between 1 and num_leaves={params.num_leaves}."
        )
    if params.num_reordering_candidates is not None and params.num_reordering_candidates < k:
        raise ValueError(f"num_reordering_candidates={params.num_reordering_candidates} must be at least k={k}.")
    if params.dimensions_per_block < 1:
        raise ValueError(f"dimensions_per_block={params.dimensions_per_block} must be at least 1.")
    threshold = params.anisotropic_quantization_threshold
    if threshold is not None and not threshold > 0:
        raise ValueError(f"anisotropic_quantization_threshold={threshold} must be positive (or None: isotropic).")
    return params


def _threshold(value: Any) -> Optional[float]:
    """The anisotropic threshold as a float, None for none (None, "none", NaN)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "nan", "")):
        return None
    value = float(value)
    return None if math.isnan(value) else value


class ScaNNTopK(tfrs.layers.factorized_top_k.ScaNN):
    """TFRS's ScaNN layer with the searcher built by ScaNN's builder from ``ScannParams``.

    Differences from TFRS's layer: the anisotropic threshold is set (TFRS builds plain
    asymmetric hashing), ScaNN re-scores at least as many candidates as it returns (TFRS's
    ``call`` kept ScaNN's default pre-reorder count, so asking for more answers than
    ``num_reordering_candidates``, k plus exclusions, silently returned fewer columns), and
    the search-time parameters (leaves searched, candidates re-scored) can be changed on a
    built index without rebuilding it (``with_search``).
    """

    def __init__(self, k: int, params: ScannParams, name: Optional[str] = None):
        super().__init__(
            k=k,
            num_leaves=params.num_leaves,
            num_leaves_to_search=params.num_leaves_to_search,
            training_iterations=params.training_iterations,
            dimensions_per_block=params.dimensions_per_block,
            num_reordering_candidates=params.num_reordering_candidates,
            name=name,
        )
        self.params = params
        self._build_searcher = self._scann_searcher

    def _scann_searcher(self, candidates: tf.Tensor):
        from scann.scann_ops.py import scann_ops

        params = self.params
        threshold = params.anisotropic_quantization_threshold
        builder = scann_ops.builder(db=candidates, num_neighbors=self._k, distance_measure="dot_product")
        builder = builder.tree(
            num_leaves=params.num_leaves,
            num_leaves_to_search=params.num_leaves_to_search,
            training_iterations=params.training_iterations,
        )
        builder = builder.score_ah(
            params.dimensions_per_block,
            anisotropic_quantization_threshold=float("nan") if threshold is None else threshold,
        )
        if params.num_reordering_candidates is not None:
            builder = builder.reorder(params.num_reordering_candidates)
        return builder.build(shared_name=f"{self.name}/{uuid.uuid4()}")

    def with_search(self, num_leaves_to_search: Optional[int] = None, num_reordering_candidates: Optional[int] = None):
        """A layer over the same built index searching with other search-time parameters.

        The index (partitions, codes, vectors) is shared, not rebuilt; only the number of
        leaves searched and of candidates re-scored change (what a sweep varies).
        Re-scoring can be changed only when the index keeps its vectors (built with
        ``num_reordering_candidates``).

        Raises:
            ValueError: the layer has no index yet, or a value out of range.
        """
        if self._serialized_searcher is None:
            raise ValueError("build the ScaNN index with index() before deriving searches from it.")
        params = replace(self.params)
        if num_leaves_to_search is not None:
            if not 1 <= num_leaves_to_search <= params.num_leaves:
                raise ValueError(
                    f"num_leaves_to_search={num_leaves_to_search} must be between 1 and num_leaves={params.num_leaves}."
                )
            params.num_leaves_to_search = int(num_leaves_to_search)
        if num_reordering_candidates is not None:
            if params.num_reordering_candidates is None:
                raise ValueError("this index was built without re-scoring; num_reordering_candidates cannot be set.")
            if num_reordering_candidates < self._k:
                raise ValueError(f"num_reordering_candidates={num_reordering_candidates} must be at least k={self._k}.")
            params.num_reordering_candidates = int(num_reordering_candidates)
        layer = ScaNNTopK(self._k, params, name=self.name)
        layer._serialized_searcher = self._serialized_searcher
        return layer

    def call(self, queries: tf.Tensor, k: Optional[Any] = None) -> Tuple[tf.Tensor, tf.Tensor]:
        from scann.scann_ops.py import scann_ops

        k = self._k if k is None else k
        if self._serialized_searcher is None:
            raise ValueError("build the ScaNN index with index() before querying it.")
        searcher = scann_ops.searcher_from_module(self._serialized_searcher)
        pre_reorder = None
        if self.params.num_reordering_candidates is not None:
            pre_reorder = tf.maximum(tf.cast(k, tf.int32), self.params.num_reordering_candidates)
        result = searcher.search_batched_parallel(
            queries,
            final_num_neighbors=k,
            pre_reorder_num_neighbors=pre_reorder,
            leaves_to_search=self.params.num_leaves_to_search,
        )
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

    def __init__(self, layer: tf.Module, item_ids: Any, name: str = "candidate_index"):
        super().__init__(name=name)
        self.layer = layer
        if isinstance(item_ids, tf.Variable):  # shared with another index over the same rows
            self.item_ids = item_ids
        else:
            values = np.asarray(item_ids)
            ids = tf.constant(values if values.dtype.kind not in "iu" else values.astype(np.int64))
            self.item_ids = tf.Variable(ids, trainable=False, name="item_ids")
        self.num_candidates = int(self.item_ids.shape[0])

    @property
    def id_dtype(self) -> tf.DType:
        return self.item_ids.dtype

    def with_search(self, **search: Any) -> "CandidateIndex":
        """The same index (ScaNN, not rebuilt) searched with other search-time parameters.

        Args:
            **search: ``num_leaves_to_search`` and / or ``num_reordering_candidates``.

        Returns:
            A CandidateIndex sharing this one's built searcher and ids (e.g. to export or
            benchmark several search settings of one build).

        Raises:
            ValueError: a brute-force index, an unknown or out-of-range parameter.
        """
        if not isinstance(self.layer, ScaNNTopK):
            raise ValueError("only a ScaNN index has search-time parameters.")
        unknown = sorted(set(search) - {"num_leaves_to_search", "num_reordering_candidates"})
        if unknown:
            raise ValueError(
                f"unknown search parameter(s) {unknown}; valid: num_leaves_to_search, num_reordering_candidates"
            )
        return CandidateIndex(self.layer.with_search(**search), self.item_ids, name=self.name)

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

        Requests without exclusions (``m = 0``, the serving default) take a short path: the
        index's answers are already best first, so they are only padded, not re-sorted, and
        ids are gathered once (the same results as the exclusion path).
        """
        if exclude_ids is None:
            return self._plain(queries, num)
        rows_given = tf.shape(exclude_ids)[0]
        batch_ok = tf.logical_or(tf.equal(rows_given, 1), tf.equal(rows_given, tf.shape(queries)[0]))
        check = tf.debugging.Assert(
            batch_ok, ["exclude_item_ids must have 1 row or one per query; rows:", rows_given], name="check_exclusions"
        )
        with tf.control_dependencies([check]):
            extra = tf.identity(tf.shape(exclude_ids)[1])
        return tf.cond(
            tf.equal(extra, 0),
            lambda: self._plain(queries, num),
            lambda: self._excluding(queries, num, exclude_ids, extra),
        )

    def _plain(self, queries: tf.Tensor, num: int):
        """Top ``num`` without exclusions: invalid (NaN) places of a short answer sit at its end."""
        scores, rows = self.layer(queries, k=min(num, self.num_candidates))
        scores = tf.cast(scores, tf.float32)
        valid = tf.logical_not(tf.math.is_nan(scores))
        rows = tf.where(valid, tf.cast(rows, tf.int32), 0)
        scores = tf.where(valid, scores, LOWEST_SCORE)
        pad = [[0, 0], [0, tf.maximum(num - tf.shape(scores)[1], 0)]]
        scores = tf.pad(scores, pad, constant_values=LOWEST_SCORE)
        valid = tf.pad(valid, pad, constant_values=False)
        rows = tf.pad(rows, pad)
        ids = tf.where(valid, tf.gather(self.item_ids, rows), _padding_id(self.id_dtype))
        for tensor in (scores, ids, rows, valid):  # `num` columns exactly (the signature's static shape)
            tensor.set_shape([None, num])
        return scores, ids, rows, valid

    def _excluding(self, queries: tf.Tensor, num: int, exclude_ids: tf.Tensor, extra: tf.Tensor):
        """Fetches ``num + m`` answers, drops the excluded ids and keeps the best ``num``."""
        fetch = tf.minimum(num + extra, self.num_candidates)
        scores, rows = self.layer(queries, k=fetch)
        scores = tf.cast(scores, tf.float32)
        rows = tf.cast(rows, tf.int32)
        valid = tf.logical_not(tf.math.is_nan(scores))
        rows = tf.where(valid, rows, 0)
        ids = tf.gather(self.item_ids, rows)
        excluded = tf.reduce_any(tf.equal(ids[:, :, None], exclude_ids[:, None, :]), axis=-1)
        valid = tf.logical_and(valid, tf.logical_not(excluded))
        # Pad short answers to `num` columns, then keep the best `num` valid places.
        missing = tf.maximum(num - tf.shape(scores)[1], 0)
        pad = [[0, 0], [0, missing]]
        scores = tf.pad(tf.where(valid, scores, LOWEST_SCORE), pad, constant_values=LOWEST_SCORE)
        valid = tf.pad(valid, pad, constant_values=False)
        ids = tf.pad(ids, pad, constant_values=_padding_id(self.id_dtype))
        rows = tf.pad(rows, pad)
        scores, order = tf.math.top_k(scores, k=num)
        rows = tf.gather(rows, order, batch_dims=1)
        valid = tf.gather(valid, order, batch_dims=1)
        ids = tf.where(valid, tf.gather(ids, order, batch_dims=1), _padding_id(self.id_dtype))
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
        layer = ScaNNTopK(k, params, name="scann")
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
