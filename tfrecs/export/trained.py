"""Export a ``TrainResult`` (what ``tfrecs.recipes.train`` returns) by its typed artifacts.

Retrieval recipes hand back ``RetrievalArtifacts`` (an index export; item-item models serve
their history), ranking recipes ``RankingArtifacts`` (a ranking export) and NeuMF
``CandidateScoringArtifacts`` (the whole catalogue scored per request, plus a
``score_candidates`` signature; ``tfrecs.export.artifacts``). The training part of the split
gives the serving dtypes and real warmup rows. ``export_info.json`` holds the run's record
(``TrainResult.record``: data set, split, seed, hyper-parameters, figures) under ``training``.

Example::

    result = train(TrainConfig(model="two_tower", dataset="ml-100k"))
    export_trained(result, "saved_models", "two_tower", index="scann", k=10)
"""

from typing import Any, Dict, Mapping, Optional, Union

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import ITEM_ID
from tfrecs.export.artifacts import CandidateScoringArtifacts, RankingArtifacts, RetrievalArtifacts
from tfrecs.export.faiss_index import FAISS_INDEX_KINDS
from tfrecs.export.ranking import export_ranking
from tfrecs.export.retrieval import export_retrieval, serving_form
from tfrecs.export.saving import ExportResult
from tfrecs.export.scoring import export_candidate_scoring
from tfrecs.export.two_stage import export_two_stage

Artifacts = Union[RetrievalArtifacts, RankingArtifacts]


def _training_columns(artifacts: Artifacts):
    """Training rows (dtypes, warmup): the split's joined training columns and ``user_query_features``."""
    from tfrecs.data import joined_columns

    per_user = getattr(artifacts, "user_query_features", None) or {}
    split = getattr(artifacts, "split", None)
    return {**(joined_columns(split.train) if split is not None else {}), **per_user}


def _expect(artifacts: Any, kind: type, what: str) -> None:
    if isinstance(artifacts, CandidateScoringArtifacts) and kind is RetrievalArtifacts:
        raise ValueError(
            f"a {what} export needs a retrieval model (an index to search); this model scores the whole "
            "catalogue pair by pair (NeuMF): export it alone, or use it as the re-ranker (--rerank neumf)."
        )
    if not isinstance(artifacts, kind):
        raise ValueError(f"a {what} export needs {kind.__name__}; the TrainResult carries {type(artifacts).__name__}.")


def _artifacts(result: Any) -> Artifacts:
    """``result.artifacts``, or, for an item-item model trained without them, what the model alone gives.

    EASE / ItemKNN know their catalogue and read a ``history`` of raw ids, so they export
    without a split (synthetic warmup rows; ``--show-user`` needs the recipe's
    ``history_artifacts``).

    Raises:
        ValueError: no artifacts and a model that cannot describe its own export.
    """
    if result.artifacts is not None:
        return result.artifacts
    from tfrecs.models.item_item import ItemItemModel

    model = result.model
    if isinstance(model, ItemItemModel):
        item_ids = np.asarray(model.item_ids)
        dtype = tf.int64 if item_ids.dtype.kind in "iu" else tf.string
        return RetrievalArtifacts(
            feature_spec=None,
            query_features=[model.history_key],
            candidates={ITEM_ID: item_ids},
            split=None,
            serving_signature={model.history_key: tf.TensorSpec([None, None], dtype)},
        )
    raise ValueError(
        f"the TrainResult of {type(model).__name__} carries no export artifacts (RetrievalArtifacts, "
        "RankingArtifacts or CandidateScoringArtifacts from tfrecs.export.artifacts); its recipe must return them."
    )


def _with_item_features(candidates: Mapping[str, Any], ranking: RankingArtifacts) -> Dict[str, Any]:
    """The retrieval candidates plus the item-table columns the re-ranker reads that they lack.

    A retriever that knows items only by id (SASRec, LightGCN, EASE) hands over ``item_id``
    alone; a re-ranker reading ``genres`` gets them from its split's item table, so they are
    item-side features of the export's candidate table, not request inputs.
    """
    split = getattr(ranking, "split", None)
    items = split.train.items if split is not None else None
    wanted = [name for name in ranking.features if items is not None and name in items and name not in candidates]
    if not wanted or ITEM_ID not in candidates:
        return dict(candidates)
    index = split.train.item_index
    rows = index.lookup(np.asarray(candidates[ITEM_ID]).astype(index.ids.dtype))
    return {**candidates, **{name: np.asarray(items[name])[rows] for name in wanted}}


def _training_info(result: Any) -> Dict[str, Any]:
    record = getattr(result, "record", None)
    return {"training": dict(record)} if record else {}


def export_trained(
    result: Any,
    export_root: str,
    model_name: str,
    index: str = "scann",
    k: int = 10,
    scann_params: Optional[Mapping[str, Any]] = None,
    rerank: Any = None,
    num_candidates: int = 100,
    version: Optional[int] = None,
    warmup: bool = True,
    base_path_prefix: Optional[str] = "/models",
    index_params: Optional[Mapping[str, Any]] = None,
) -> ExportResult:
    """Exports a trained model: retrieval (index inside, or a FAISS index beside it), ranking,
    candidate scoring (NeuMF), or two-stage with ``rerank``.

    Args:
        result: TrainResult of a retrieval, ranking or candidate-scoring recipe.
        export_root, model_name: TF Serving root and model name.
        index, k, scann_params: index kind, answers per query, ScaNN overrides (retrieval).
        rerank: TrainResult of a ranking recipe: export retrieve-then-rank as one SavedModel.
        num_candidates: candidates re-ranked per query (two-stage).
        version, warmup, base_path_prefix: see ``export_retrieval``.
        index_params: index parameter overrides of any kind (``export_retrieval``); merged
            over ``scann_params``. ``index="faiss-hnsw"`` / ``"faiss-ivf"``: retrieval only.

    Returns:
        ExportResult; ``export_info.json`` holds ``result.record`` under ``training`` (when the
        result has one) and the package versions under ``versions``.

    Raises:
        ValueError: the artifacts are not of the kind the export needs, or ScaNN parameters
            for a model exported without an index.
    """
    artifacts = _artifacts(result)
    scann_params = {**dict(scann_params or {}), **dict(index_params or {})} or None
    if index in FAISS_INDEX_KINDS and rerank is not None:
        raise ValueError(
            f"index={index!r} serves neighbours from FAISS beside the SavedModel; a two-stage export keeps its "
            "index inside, between retriever and ranker: use scann or brute_force"
        )
    if index in FAISS_INDEX_KINDS and not isinstance(artifacts, RetrievalArtifacts):
        raise ValueError(
            f"index={index!r} applies to retrieval models; {type(result.model).__name__} exports without an index "
            "(ranking, or scoring the whole catalogue)"
        )
    columns = _training_columns(artifacts)
    extra_info = _training_info(result)
    if rerank is not None:
        _expect(artifacts, RetrievalArtifacts, "two-stage (retrieval side)")
        _expect(rerank.artifacts, RankingArtifacts, "two-stage (re-ranking side)")
        ranking = rerank.artifacts
        return export_two_stage(
            serving_form(result.model),
            rerank.model,
            _with_item_features(artifacts.candidates, ranking),
            export_root,
            model_name,
            feature_spec=artifacts.feature_spec,
            query_features=artifacts.query_features,
            ranking_features=ranking.features,
            ranking_feature_spec=ranking.feature_spec,
            num_candidates=num_candidates,
            k=k,
            index=index,
            scann_params=scann_params,
            columns={**_training_columns(ranking), **columns},
            version=version,
            warmup=warmup,
            signature_overrides=artifacts.serving_signature,
            ranking_signature_overrides=ranking.serving_signature or {},
            base_path_prefix=base_path_prefix,
            extra_info={**extra_info, **{f"rerank_{k}": v for k, v in _training_info(rerank).items()}},
        )
    if isinstance(artifacts, RetrievalArtifacts):
        return export_retrieval(
            serving_form(result.model),
            artifacts.candidates,
            export_root,
            model_name,
            feature_spec=artifacts.feature_spec,
            query_features=artifacts.query_features,
            index=index,
            k=k,
            scann_params=scann_params,
            item_titles=artifacts.item_titles,
            columns=columns,
            signature_overrides=artifacts.serving_signature,
            version=version,
            warmup=warmup,
            base_path_prefix=base_path_prefix,
            extra_info=extra_info,
        )
    if isinstance(artifacts, CandidateScoringArtifacts):
        if scann_params:
            raise ValueError(
                f"ScaNN parameters {sorted(scann_params)} do not apply: {type(result.model).__name__} scores "
                "the whole catalogue exactly, without an index."
            )
        return export_candidate_scoring(
            result.model,
            artifacts.candidates,
            export_root,
            model_name,
            feature_spec=artifacts.feature_spec,
            user_features=[name for name in artifacts.features if name not in artifacts.candidates],
            k=k,
            item_titles=artifacts.item_titles,
            columns=columns,
            version=version,
            warmup=warmup,
            base_path_prefix=base_path_prefix,
            extra_info=extra_info,
        )
    _expect(artifacts, RankingArtifacts, "ranking")
    return export_ranking(
        result.model,
        export_root,
        model_name,
        feature_spec=artifacts.feature_spec,
        features=artifacts.features,
        columns=columns,
        signature_overrides=artifacts.serving_signature,
        version=version,
        warmup=warmup,
        base_path_prefix=base_path_prefix,
        extra_info=extra_info,
    )
