"""Retrieval export: raw query features -> top-k original item ids and scores, index inside.

The ``serving_default`` signature of a retrieval export:

* inputs: the query tower's raw features under their training names and dtypes (e.g.
  ``user_id`` string ``[batch]``, a padded history ``[batch, max_len]``), plus the optional
  ``exclude_item_ids`` ``[batch or 1, m]`` of the item id dtype: ids never to return (e.g.
  already-seen items). It defaults to an empty ``[1, 0]`` tensor (a SignatureDef default,
  honoured by TF Serving and the TF1 loader; TF2 ``signatures[...]`` callers pass it);
* outputs: ``item_ids`` ``[batch, k]`` (raw ids, not indices), ``scores`` ``[batch, k]``
  float32 (dot products, best first) and, when titles were given, ``titles`` ``[batch, k]``.

``k`` is fixed at export. If exclusions leave fewer than ``k`` candidates, the tail holds
the padding id (``""`` or ``-1``) and the lowest float32 score.

Example::

    result = train(TrainConfig(model="two_tower", dataset="ml-100k"))
    export_retrieval(result.model, result.artifacts["candidates"], "saved_models", "two_tower",
                     feature_spec=result.artifacts["feature_spec"],
                     query_features=result.artifacts["query_features"], index="scann", k=10)
"""

import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import ITEM_ID
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.export.faiss_index import FAISS_INDEX_KINDS
from tfrecs.export.index import CandidateIndex, build_index
from tfrecs.export.layout import resolve_version
from tfrecs.export.saving import ExportResult, save_export, trackable_parts, warmup_batches
from tfrecs.export.signature import (
    checked_features,
    dense_column,
    describe,
    example_features,
    feature_signature,
    missing_feature,
)

EXCLUDE_INPUT = "exclude_item_ids"


class ServingTowers(tf.Module):
    """A query and a candidate tower served as one retrieval model (the export contract).

    What a model hands to an export when its training graph is heavier than what serving
    needs: LightGCN's ``export_towers()`` gives frozen id -> final-embedding tables, so the
    export never propagates the graph per request.

    Example::

        export_retrieval(ServingTowers(*lightgcn.export_towers()), candidates, "saved_models", "lightgcn")
    """

    def __init__(self, query_tower: Any, candidate_tower: Any):
        super().__init__(name="serving_towers")
        self.query_tower, self.candidate_tower = query_tower, candidate_tower

    def compute_query_embeddings(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return self.query_tower(dict(features), training=training)

    def candidate_embeddings(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        return tf.cast(self.candidate_tower(dict(features), training=False), tf.float32)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        return {"query_tower": self.query_tower, "candidate_tower": self.candidate_tower}


class HistoryTowers(tf.Module):
    """An item-item model (EASE, ItemKNN) served as a retrieval model.

    Its scores are ``x_u W``: the query is the multi-hot vector of the raw ``history`` ids
    (the model's ``call``), the candidate vectors are the columns of ``W``, so the index holds
    ``W`` and the saved query tower is only the id lookup (``W`` is not saved twice).
    """

    def __init__(self, model: Any):
        super().__init__(name="history_towers")
        self.model = model

    def compute_query_embeddings(self, features: Mapping[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        return tf.cast(self.model(dict(features), training=False), tf.float32)

    def candidate_embeddings(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        ids = features[ITEM_ID] if ITEM_ID in features else next(iter(features.values()))
        rows = self.model.lookup(ids) - 1  # catalogue row of each id (SequenceIds: row + 1)
        return tf.gather(tf.transpose(self.model.item_matrix_weight), rows)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        return {"item_lookup": self.model.lookup}


def serving_form(model: Any) -> Any:
    """What a retrieval export serves of ``model``: its frozen towers when it has them (LightGCN),
    an item-item model as history -> item-item columns, else the model itself."""
    from tfrecs.models.item_item import ItemItemModel

    if isinstance(model, ItemItemModel):
        return HistoryTowers(model)
    towers = getattr(model, "export_towers", None)
    return ServingTowers(*towers()) if callable(towers) else model


def query_embeddings(model: Any, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """float32 ``[batch, dim]`` query embeddings of raw features (the RetrievalModel contract)."""
    return tf.cast(model.compute_query_embeddings(dict(features), training=False), tf.float32)


def check_query_tower(model: Any, examples: Mapping[str, np.ndarray]) -> int:
    """Runs the query tower on example inputs; returns the embedding dimension.

    Raises:
        ValueError: the model has no query tower, reads a feature the signature lacks, or
            returns something other than ``[batch, dim]``.
    """
    name = type(model).__name__
    if not callable(getattr(model, "compute_query_embeddings", None)):
        raise ValueError(
            f"model {name} has no query tower: retrieval exports need a RetrievalModel "
            "(compute_query_embeddings / candidate_embeddings)."
        )
    tensors = {key: tf.constant(value) for key, value in examples.items()}
    try:
        output = query_embeddings(model, tensors)
    except NotImplementedError as error:
        raise ValueError(
            f"model {name} has no query tower ({error}); set query_tower or override compute_query_embeddings."
        ) from None
    except KeyError as error:
        raise ValueError(
            f"the query tower of {name} reads feature {missing_feature(error)} which is not among "
            f"the query features {sorted(examples)}; add it to query_features."
        ) from None
    if output.shape.rank != 2:
        raise ValueError(f"the query tower of {name} returned shape {output.shape}; expected [batch, dim].")
    return int(output.shape[1])


def candidate_embeddings(model: Any, candidates: Mapping[str, np.ndarray], batch_size: int = 4096) -> np.ndarray:
    """``[n, dim]`` float32 embeddings of every candidate, computed in batches.

    Raises:
        ValueError: the model has no candidate tower.
    """
    embed = getattr(model, "candidate_embeddings", None) or getattr(model, "compute_candidate_embeddings", None)
    if not callable(embed):
        raise ValueError(f"model {type(model).__name__} has no candidate tower (candidate_embeddings).")
    embed_batch = tf.function(lambda batch: tf.cast(embed(batch), tf.float32))
    data = tf.data.Dataset.from_tensor_slices(dict(candidates)).batch(batch_size)
    try:
        return np.concatenate([embed_batch(batch).numpy() for batch in data], axis=0)
    except NotImplementedError as error:
        raise ValueError(f"model {type(model).__name__} has no candidate tower ({error}).") from None


def dense_candidates(
    candidates: Mapping[str, Any],
    feature_spec: Optional[FeatureSpec],
    overrides: Optional[Mapping[str, tf.TensorSpec]] = None,
) -> Dict[str, np.ndarray]:
    """Candidate columns as dense numpy arrays (list columns such as genres padded)."""
    signature = feature_signature(feature_spec, list(candidates), columns=candidates, overrides=overrides)
    return {name: dense_column(candidates[name], signature[name]) for name in candidates}


def check_candidates(candidates: Mapping[str, Any], candidate_id_key: str, k: int, argument: str = "k") -> int:
    """Number of candidates; raises ``ValueError`` on a missing id column, ragged columns or k > n.

    ``argument`` names ``k`` in the message (``num_candidates`` for two-stage exports).
    """
    if candidate_id_key not in candidates:
        raise ValueError(
            f"candidates have no {candidate_id_key!r} column (columns: {sorted(candidates)}); pass candidate_id_key."
        )
    n = len(candidates[candidate_id_key])
    uneven = {name: len(values) for name, values in candidates.items() if len(values) != n}
    if uneven:
        raise ValueError(f"candidate columns differ in length: {candidate_id_key!r} has {n} rows, {uneven}.")
    if not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"{argument}={k!r} must be between 1 and the number of candidates ({n}).")
    return n


def index_candidates(
    model: Any,
    candidates: Mapping[str, Any],
    query_examples: Mapping[str, np.ndarray],
    feature_spec: Optional[FeatureSpec],
    overrides: Optional[Mapping[str, tf.TensorSpec]],
    kind: str,
    k: int,
    scann_params: Optional[Mapping[str, Any]],
    candidate_id_key: str,
    batch_size: int = 4096,
) -> Tuple[CandidateIndex, Dict[str, Any], np.ndarray]:
    """Checks both towers, embeds every candidate and builds the index.

    Returns:
        (CandidateIndex, its report as a dict, a ``[1, 1]`` exclusion example for warmup).

    Raises:
        ValueError: no query tower, or towers of different dimensions.
    """
    query_dim = check_query_tower(model, query_examples)
    dense = dense_candidates(candidates, feature_spec, overrides)
    embeddings = candidate_embeddings(model, dense, batch_size)
    if embeddings.shape[1] != query_dim:
        raise ValueError(
            f"query embeddings have {query_dim} dimensions but candidate embeddings have "
            f"{embeddings.shape[1]}; the towers must agree."
        )
    candidate_index, report = build_index(embeddings, dense[candidate_id_key], kind=kind, k=k, scann=scann_params)
    return candidate_index, report.to_dict(), dense[candidate_id_key][:1].reshape(1, 1)


def exclusion_info(index: CandidateIndex) -> Dict[str, Any]:
    """The ``exclude_item_ids`` entry of an export's ``info["inputs"]``."""
    return {EXCLUDE_INPUT: {"dtype": index.id_dtype.name, "shape": [-1, -1], "optional": True}}


def exclusion_default(id_dtype: tf.DType) -> tf.Tensor:
    """The empty ``[1, 0]`` default of ``exclude_item_ids``."""
    return tf.zeros([1, 0], id_dtype) if id_dtype != tf.string else tf.fill([1, 0], "")


class RetrievalModule(tf.Module):
    """Serving module: query tower + CandidateIndex (+ titles); ``serving_default`` is its signature.

    Args:
        model: the RetrievalModel (its layers are saved, not its optimizer).
        index: the built CandidateIndex.
        k: answers per query.
        query_signature: name -> TensorSpec of the raw query features.
        item_titles: optional ``[n]`` titles aligned with the candidates.
    """

    def __init__(
        self,
        model: Any,
        index: CandidateIndex,
        k: int,
        query_signature: Mapping[str, tf.TensorSpec],
        item_titles: Optional[np.ndarray] = None,
    ):
        super().__init__(name="retrieval")
        self.model_parts = trackable_parts(model)
        self.index = index
        self.k = k
        self.titles = (
            None
            if item_titles is None
            else tf.Variable(np.asarray([str(t) for t in item_titles], dtype=object), trainable=False, name="titles")
        )
        exclude_spec = tf.TensorSpec([None, None], index.id_dtype, name=EXCLUDE_INPUT)

        def serve(features, exclude_item_ids=exclusion_default(index.id_dtype)):  # noqa: B008  (traced once)
            features = checked_features(features, query_signature)
            scores, ids, rows, valid = index.search(query_embeddings(model, features), k, exclude_item_ids)
            outputs = {"item_ids": ids, "scores": scores}
            if self.titles is not None:
                outputs["titles"] = tf.where(valid, tf.gather(self.titles, rows), "")
            return outputs

        self.serving_default = tf.function(serve, input_signature=[dict(query_signature), exclude_spec])


def export_retrieval(
    model: Any,
    candidates: Mapping[str, Any],
    export_root: str,
    model_name: str,
    feature_spec: Optional[FeatureSpec] = None,
    query_features: Optional[Sequence[str]] = None,
    index: str = "scann",
    k: int = 10,
    scann_params: Optional[Mapping[str, Any]] = None,
    item_titles: Optional[Sequence[str]] = None,
    columns: Optional[Mapping[str, np.ndarray]] = None,
    signature_overrides: Optional[Mapping[str, tf.TensorSpec]] = None,
    candidate_id_key: str = "item_id",
    version: Optional[int] = None,
    warmup: bool = True,
    base_path_prefix: Optional[str] = "/models",
    candidate_batch_size: int = 4096,
    extra_info: Optional[Mapping[str, Any]] = None,
    index_params: Optional[Mapping[str, Any]] = None,
) -> ExportResult:
    """Exports a retrieval model with an embedded ScaNN or brute-force index (or beside it, FAISS).

    Args:
        model: a RetrievalModel (``compute_query_embeddings`` / ``candidate_embeddings``).
        candidates: raw candidate columns, every catalogue item, including ``candidate_id_key``
            (TrainResult.artifacts["candidates"]).
        export_root: TF Serving root directory (e.g. ``saved_models``).
        model_name: model directory / TF Serving model name.
        feature_spec: fitted FeatureSpec (signature dtypes, vocabulary assets).
        query_features: raw features of the query tower (TrainResult.artifacts["query_features"]);
            default: the names in ``signature_overrides``.
        index: ``"scann"`` or ``"brute_force"``; ``"faiss-hnsw"`` / ``"faiss-ivf"`` export the
            query tower plus a FAISS index beside it (``tfrecs.export.faiss_export``).
        k: answers per query, fixed at export.
        scann_params: overrides of ``tune_scann`` (num_leaves, num_leaves_to_search, ...).
        index_params: overrides of the index's parameters, any kind (``tune_scann``, or
            ``tune_faiss``: ef_search, nprobe, ...); merged over ``scann_params``.
        item_titles: titles aligned with the candidates (adds a ``titles`` output).
        columns: training columns; their dtypes and first rows shape the signature and warmup.
        signature_overrides: explicit TensorSpecs by feature name.
        candidate_id_key: candidate column with the raw item ids.
        version: integer version (default: next free).
        warmup: write ``assets.extra/tf_serving_warmup_requests``.
        base_path_prefix: where export_root is mounted in TF Serving (models.config).
        candidate_batch_size: batch size of the candidate tower pass.
        extra_info: more entries for ``export_info.json`` (``export_trained``: the training record).

    Returns:
        ExportResult (``info`` holds k, the index report with build seconds, the signature);
        ``result.module`` is the in-memory serving module.

    Raises:
        ValueError: no query tower, k outside [1, n], a version that exists, unknown features.
    """
    started = time.perf_counter()
    scann_params = {**dict(scann_params or {}), **dict(index_params or {})} or None
    if index in FAISS_INDEX_KINDS:
        from tfrecs.export.faiss_export import export_faiss_retrieval

        return export_faiss_retrieval(
            model,
            candidates,
            export_root,
            model_name,
            feature_spec=feature_spec,
            query_features=query_features,
            index=index,
            k=k,
            index_params=scann_params,
            item_titles=item_titles,
            columns=columns,
            signature_overrides=signature_overrides,
            candidate_id_key=candidate_id_key,
            version=version,
            warmup=warmup,
            base_path_prefix=base_path_prefix,
            candidate_batch_size=candidate_batch_size,
            extra_info=extra_info,
        )
    resolve_version(export_root, model_name, version)  # fail before any work
    num_candidates = check_candidates(candidates, candidate_id_key, k)
    names = list(query_features or (signature_overrides or {}))
    signature = feature_signature(feature_spec, names, columns=columns, overrides=signature_overrides)
    examples = example_features(signature, feature_spec, num_rows=4, columns=columns)
    if item_titles is not None and len(item_titles) != num_candidates:
        raise ValueError(f"item_titles has {len(item_titles)} entries but there are {num_candidates} candidates.")
    candidate_index, report, exclude = index_candidates(
        model,
        candidates,
        examples,
        feature_spec,
        signature_overrides,
        index,
        k,
        scann_params,
        candidate_id_key,
        candidate_batch_size,
    )
    module = RetrievalModule(model, candidate_index, k, signature, item_titles)
    outputs = ["item_ids", "scores"] + (["titles"] if item_titles is not None else [])
    info = {
        "k": k,
        "candidate_id_key": candidate_id_key,
        "index": report,
        "inputs": {**describe(signature), **exclusion_info(candidate_index)},
        "outputs": outputs,
    }
    requests = warmup_batches(examples, extra={EXCLUDE_INPUT: exclude}) if warmup else None
    return save_export(
        module,
        export_root,
        model_name,
        "retrieval",
        info,
        feature_spec,
        requests,
        version,
        base_path_prefix,
        started,
        extra_info,
    )
