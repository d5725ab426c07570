"""Two-stage export: retrieve candidates with the index, re-rank them with a ranking model, in one SavedModel.

The ``serving_default`` signature takes the union of the query tower's raw features and
the ranking model's request-side features (those not in the candidate table), plus the
optional ``exclude_item_ids``. For each query it

1. embeds the query and retrieves ``num_candidates`` items from the index (ScaNN or exact),
2. builds the ranking model's inputs for every (query, candidate) pair: item-side features
   gathered from the candidate table saved in the export, request-side features repeated
   (a history both models read at different widths reaches the ranker as each row's most
   recent items at the ranker's width: ``rewindow``),
3. scores the pairs with the ranking model (the ``rank_by`` task's probability or score),
4. returns the best ``k``: ``item_ids``, ``scores`` (ranking) and ``retrieval_scores``.

Example::

    export_two_stage(retrieval.model, ranking.model, retrieval.artifacts["candidates"],
                     "saved_models", "two_stage",
                     feature_spec=retrieval.artifacts["feature_spec"],
                     query_features=retrieval.artifacts["query_features"],
                     ranking_features=ranking.artifacts["features"],
                     ranking_feature_spec=ranking.artifacts["feature_spec"], num_candidates=100, k=10)
"""

import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfrecs.data.feature_spec import SEQUENCE_PADDING, FeatureSpec
from tfrecs.export.index import LOWEST_SCORE, CandidateIndex
from tfrecs.export.layout import resolve_version
from tfrecs.export.ranking import output_names, ranking_outputs, task_kinds
from tfrecs.export.retrieval import (
    EXCLUDE_INPUT,
    check_candidates,
    dense_candidates,
    exclusion_default,
    exclusion_info,
    index_candidates,
    query_embeddings,
)
from tfrecs.export.saving import ExportResult, save_export, trackable_parts, warmup_batches
from tfrecs.export.signature import checked_features, describe, example_features, feature_signature


def _is_id_matrix(spec: tf.TensorSpec) -> bool:
    return spec.shape.rank == 2 and (spec.dtype == tf.string or spec.dtype.is_integer)


def _request_signature(
    query_signature: Mapping[str, tf.TensorSpec], ranking_signature: Mapping[str, tf.TensorSpec]
) -> Tuple[Dict[str, tf.TensorSpec], Dict[str, int]]:
    """The request's inputs (query tower's first) and the id matrices the ranker reads at another width.

    A feature both models read must have one dtype. An item-id matrix (a history) may differ in
    width: the request takes the query tower's, and the ranker gets each row's most recent
    items at its own width (``rewindow``).

    Returns:
        (name -> TensorSpec of the request, name -> the ranker's width for re-windowed features).
    """
    merged = dict(query_signature)
    widths: Dict[str, int] = {}
    for name, spec in ranking_signature.items():
        if name not in merged:
            merged[name] = spec
            continue
        mine = merged[name]
        if mine.dtype == spec.dtype and mine.shape == spec.shape:
            continue
        if mine.dtype == spec.dtype and _is_id_matrix(mine) and _is_id_matrix(spec):
            if spec.shape[1] is not None:
                widths[name] = int(spec.shape[1])
            continue
        raise ValueError(
            f"feature {name!r} is {mine.dtype.name}{mine.shape} for the query "
            f"tower but {spec.dtype.name}{spec.shape} for the ranking model; they must agree."
        )
    return merged, widths


def rewindow(ids: tf.Tensor, width: int) -> tf.Tensor:
    """``[batch, width]``: each row's last ``width`` real ids (oldest first), start-aligned, padded.

    Rows of ``ids`` are histories of any width and either alignment (tfrecs pads with ``""``
    or ``-1``, oldest item first), e.g. SASRec's left-padded 50 items for a DIN trained on 20.
    """
    padding = SEQUENCE_PADDING["string" if ids.dtype == tf.string else "int64"]
    padding = tf.constant(padding, dtype=ids.dtype)
    ids = tf.concat([ids, tf.fill([tf.shape(ids)[0], 1], padding)], axis=1)  # at least one column
    real = tf.not_equal(ids, padding)
    count = tf.reduce_sum(tf.cast(real, tf.int32), axis=1)
    compact = tf.gather(ids, tf.argsort(tf.cast(~real, tf.int32), axis=1, stable=True), batch_dims=1)
    columns = tf.range(width)[None, :]
    positions = tf.minimum(tf.maximum(count - width, 0)[:, None] + columns, tf.shape(ids)[1] - 1)
    valid = columns < tf.minimum(count, width)[:, None]
    return tf.where(valid, tf.gather(compact, positions, batch_dims=1), padding)


def pair_features(
    request: Mapping[str, tf.Tensor], table: Mapping[str, tf.Variable], rows: tf.Tensor, names: Sequence[str]
) -> Dict[str, tf.Tensor]:
    """Ranking inputs for ``[batch, n]`` candidate ``rows``: ``batch * n`` rows, query-major.

    Item-side features are gathered from ``table``; request-side features are repeated n times.
    """
    per_query = tf.shape(rows)[1]
    flat_rows = tf.reshape(rows, [-1])
    features = {}
    for name in names:
        if name in table:
            features[name] = tf.gather(table[name], flat_rows)
        else:
            features[name] = tf.repeat(request[name], per_query, axis=0)
    return features


class TwoStageModule(tf.Module):
    """Serving module: query tower -> index -> ranking model -> top k."""

    def __init__(
        self,
        retrieval_model: Any,
        ranking_model: Any,
        index: CandidateIndex,
        candidate_table: Mapping[str, np.ndarray],
        request_signature: Mapping[str, tf.TensorSpec],
        query_features: Sequence[str],
        ranking_features: Sequence[str],
        kinds: Mapping[str, str],
        rank_by: str,
        num_candidates: int,
        k: int,
        ranking_widths: Optional[Mapping[str, int]] = None,
    ):
        super().__init__(name="two_stage")
        self.retrieval_parts = trackable_parts(retrieval_model)
        self.ranking_parts = trackable_parts(ranking_model)
        self.index = index
        self.candidate_table = {
            name: tf.Variable(values, trainable=False, name=f"candidate_{name}")
            for name, values in candidate_table.items()
        }
        rank_output = output_names(kinds)[rank_by]
        exclude_spec = tf.TensorSpec([None, None], index.id_dtype, name=EXCLUDE_INPUT)

        def serve(features, exclude_item_ids=exclusion_default(index.id_dtype)):  # noqa: B008  (traced once)
            features = checked_features(features, request_signature)
            queries = query_embeddings(retrieval_model, {name: features[name] for name in query_features})
            retrieval_scores, ids, rows, valid = index.search(queries, num_candidates, exclude_item_ids)
            request = dict(features)
            for name, width in (ranking_widths or {}).items():
                request[name] = rewindow(features[name], width)
            pairs = pair_features(request, self.candidate_table, rows, ranking_features)
            scores = ranking_outputs(ranking_model, pairs, kinds)[rank_output]
            scores = tf.where(valid, tf.reshape(scores, tf.shape(rows)), LOWEST_SCORE)
            scores, order = tf.math.top_k(scores, k=k)
            return {
                "item_ids": tf.gather(ids, order, batch_dims=1),
                "scores": scores,
                "retrieval_scores": tf.gather(retrieval_scores, order, batch_dims=1),
            }

        self.serving_default = tf.function(serve, input_signature=[dict(request_signature), exclude_spec])


def export_two_stage(
    retrieval_model: Any,
    ranking_model: Any,
    candidates: Mapping[str, Any],
    export_root: str,
    model_name: str,
    feature_spec: Optional[FeatureSpec] = None,
    query_features: Optional[Sequence[str]] = None,
    ranking_features: Optional[Sequence[str]] = None,
    ranking_feature_spec: Optional[FeatureSpec] = None,
    num_candidates: int = 100,
    k: int = 10,
    index: str = "scann",
    scann_params: Optional[Mapping[str, Any]] = None,
    rank_by: Optional[str] = None,
    columns: Optional[Mapping[str, np.ndarray]] = None,
    signature_overrides: Optional[Mapping[str, tf.TensorSpec]] = None,
    ranking_signature_overrides: Optional[Mapping[str, tf.TensorSpec]] = None,
    candidate_id_key: str = "item_id",
    version: Optional[int] = None,
    warmup: bool = True,
    base_path_prefix: Optional[str] = "/models",
    extra_info: Optional[Mapping[str, Any]] = None,
) -> ExportResult:
    """Exports retrieve-then-rank as one SavedModel.

    Args:
        retrieval_model: RetrievalModel (query and candidate towers).
        ranking_model: RankingModel scoring (query, item) pairs from raw features.
        candidates: raw candidate columns (all catalogue items, incl. ``candidate_id_key`` and the
            item-side features the ranking model reads, e.g. ``genres``).
        export_root, model_name: TF Serving root and model name.
        feature_spec: the retrieval FeatureSpec; ``ranking_feature_spec`` the ranking one
            (default: the same). The first is saved as an asset.
        query_features: raw features of the query tower.
        ranking_features: raw features of the ranking model (item-side ones come from ``candidates``).
        num_candidates: candidates retrieved per query and re-ranked.
        k: answers returned per query (at most ``num_candidates``).
        index, scann_params: index kind and ScaNN overrides (see ``build_index``).
        rank_by: task whose output orders the answers (default: the first binary task, else the first).
        columns: training columns (dtypes, warmup rows).
        signature_overrides: explicit TensorSpecs by feature name (the query tower's, and the
            ranking model's unless ``ranking_signature_overrides`` is given).
        ranking_signature_overrides: explicit TensorSpecs of the ranking model's features (e.g.
            DIN's ``history`` of another width than the query tower's).
        candidate_id_key, version, warmup, base_path_prefix: as in ``export_retrieval``.
        extra_info: more entries for ``export_info.json`` (``export_trained``: the training record).

    Returns:
        ExportResult.

    Raises:
        ValueError: k > num_candidates, num_candidates > catalogue, no query tower, a ranking
            feature in neither the request nor the candidates, unknown ``rank_by``.
    """
    started = time.perf_counter()
    resolve_version(export_root, model_name, version)  # fail before any work
    catalogue_size = check_candidates(candidates, candidate_id_key, num_candidates, "num_candidates")
    if not isinstance(k, int) or not 1 <= k <= num_candidates:
        raise ValueError(f"k={k!r} must be between 1 and num_candidates={num_candidates}.")
    ranking_spec = ranking_feature_spec or feature_spec
    kinds = task_kinds(ranking_model)
    if rank_by is None:
        rank_by = next((name for name, kind in kinds.items() if kind == "binary"), next(iter(kinds)))
    if rank_by not in kinds:
        raise ValueError(f"rank_by={rank_by!r} is not a task of the ranking model; its tasks are {sorted(kinds)}.")
    query_names = list(query_features or [])
    ranking_names = list(ranking_features or [])
    if not ranking_names:
        raise ValueError("ranking_features must name the raw features the ranking model reads.")
    table_names = [name for name in ranking_names if name in candidates and name not in query_names]
    ranking_overrides = signature_overrides if ranking_signature_overrides is None else ranking_signature_overrides
    table_signature = feature_signature(ranking_spec, table_names, columns=candidates, overrides=ranking_overrides)
    table = {
        name: dense_candidates({name: candidates[name]}, ranking_spec, table_signature)[name] for name in table_names
    }
    query_signature = feature_signature(feature_spec, query_names, columns=columns, overrides=signature_overrides)
    request_only = [name for name in ranking_names if name not in table]
    ranking_signature = (
        feature_signature(ranking_spec, request_only, columns=columns, overrides=ranking_overrides)
        if request_only
        else {}
    )
    request_signature, ranking_widths = _request_signature(query_signature, ranking_signature)
    examples = example_features(request_signature, feature_spec, num_rows=4, columns=columns)
    query_examples = {name: examples[name] for name in query_names}
    candidate_index, report, exclude = index_candidates(
        retrieval_model,
        candidates,
        query_examples,
        feature_spec,
        signature_overrides,
        index,
        num_candidates,
        scann_params,
        candidate_id_key,
    )
    module = TwoStageModule(
        retrieval_model,
        ranking_model,
        candidate_index,
        table,
        request_signature,
        query_names,
        ranking_names,
        kinds,
        rank_by,
        num_candidates,
        k,
        ranking_widths,
    )
    info = {
        "k": k,
        "num_candidates": num_candidates,
        "catalogue_size": catalogue_size,
        "rank_by": rank_by,
        "candidate_id_key": candidate_id_key,
        "index": report,
        "item_side_features": table_names,
        "rewindowed_for_ranking": ranking_widths,
        "inputs": {**describe(request_signature), **exclusion_info(candidate_index)},
        "outputs": ["item_ids", "scores", "retrieval_scores"],
    }
    requests = warmup_batches(examples, extra={EXCLUDE_INPUT: exclude}) if warmup else None
    return save_export(
        module,
        export_root,
        model_name,
        "two_stage",
        info,
        feature_spec,
        requests,
        version,
        base_path_prefix,
        started,
        extra_info,
    )
