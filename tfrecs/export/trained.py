"""Export a ``TrainResult`` (what ``tfrecs.recipes.train`` returns) by its typed artifacts.

Retrieval recipes hand back ``RetrievalArtifacts``, ranking recipes ``RankingArtifacts``
(``tfrecs.export.artifacts``). The training part of the split gives the serving dtypes and
real warmup rows.

Example::

    result = train(TrainConfig(model="two_tower", dataset="ml-100k"))
    export_trained(result, "saved_models", "two_tower", index="scann", k=10)
"""

from typing import Any, Mapping, Optional, Union

from tfrecs.export.artifacts import RankingArtifacts, RetrievalArtifacts
from tfrecs.export.ranking import export_ranking
from tfrecs.export.retrieval import export_retrieval, serving_form
from tfrecs.export.saving import ExportResult
from tfrecs.export.two_stage import export_two_stage

Artifacts = Union[RetrievalArtifacts, RankingArtifacts]


def _training_columns(artifacts: Artifacts):
    """Training rows (dtypes, warmup): the split's joined training columns and ``user_query_features``."""
    from tfrecs.data import joined_columns

    per_user = getattr(artifacts, "user_query_features", None) or {}
    return {**joined_columns(artifacts.split.train), **per_user}


def _expect(artifacts: Any, kind: type, what: str) -> None:
    if not isinstance(artifacts, kind):
        raise ValueError(f"a {what} export needs {kind.__name__}; the TrainResult carries {type(artifacts).__name__}.")


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
) -> ExportResult:
    """Exports a trained model: retrieval (index inside), ranking, or two-stage with ``rerank``.

    Args:
        result: TrainResult of a retrieval or ranking recipe.
        export_root, model_name: TF Serving root and model name.
        index, k, scann_params: index kind, answers per query, ScaNN overrides (retrieval).
        rerank: TrainResult of a ranking recipe: export retrieve-then-rank as one SavedModel.
        num_candidates: candidates re-ranked per query (two-stage).
        version, warmup, base_path_prefix: see ``export_retrieval``.

    Returns:
        ExportResult.

    Raises:
        ValueError: the artifacts are not of the kind the export needs.
    """
    artifacts = result.artifacts
    columns = _training_columns(artifacts)
    if rerank is not None:
        _expect(artifacts, RetrievalArtifacts, "two-stage (retrieval side)")
        _expect(rerank.artifacts, RankingArtifacts, "two-stage (re-ranking side)")
        ranking = rerank.artifacts
        return export_two_stage(
            serving_form(result.model),
            rerank.model,
            artifacts.candidates,
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
            signature_overrides={**(ranking.serving_signature or {}), **(artifacts.serving_signature or {})} or None,
            base_path_prefix=base_path_prefix,
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
    )
