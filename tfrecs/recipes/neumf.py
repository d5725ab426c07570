"""NCF / NeuMF recipe: pointwise training with K sampled negatives, optional GMF + MLP pre-training.

Settings -> view (``tfrecs.pipelines.IdData``) -> model (``NeuMF``) -> fit -> figures.
``--set`` reaches the ``NeuMF`` keywords (``mode``, ``gmf_dim``, ``mlp_units``, ...) and the
training settings of ``NeuMFSettings`` (``num_negatives``, ``pretrain``, ``alpha``, ...).

Example::

    result = train(TrainConfig(model="neumf", hparams={"pretrain": True}))
    result.figures["ndcg@10"]
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

from tfrecs import training
from tfrecs.data.dataset import ITEM_ID, USER_ID
from tfrecs.export.artifacts import CandidateScoringArtifacts
from tfrecs.models.neumf import NeuMF
from tfrecs.pipelines.id_view import IdData
from tfrecs.pipelines.negative_sampling import DEFAULT_ALPHA
from tfrecs.pipelines.tfrecord_training import RunSource, id_batches
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.retrieval_common import final_figures, validation_evaluator
from tfrecs.recipes.skeleton import fit_recipe, load_split, recipe_settings

PROTOCOL = "random-full"


@dataclass
class NeuMFSettings:
    """Training settings of the NCF recipe (paper: 4 negatives, Adam 1e-3; model keywords are ``NeuMF``'s).

    Attributes:
        num_negatives, negative_sampler, popularity_alpha: sampled negatives per positive.
        batch_size, learning_rate, epochs, patience: ``fit`` settings (``TrainConfig`` overrides
            batch size, learning rate and epochs).
        pretrain: with ``mode="neumf"``, pre-train GMF and MLP, then fuse (``NeuMF.from_pretrained``).
        alpha: the fusion's trade-off; fused_learning_rate: learning rate after fusion.
        max_positives: train on the first this many interactions only (quick runs).
    """

    num_negatives: int = 4
    negative_sampler: str = "uniform"
    popularity_alpha: float = DEFAULT_ALPHA
    batch_size: int = 256
    learning_rate: float = 1e-3
    epochs: int = 20
    patience: int = 3
    pretrain: bool = False
    alpha: float = 0.5
    fused_learning_rate: float = 1e-4
    max_positives: Optional[int] = None


def load_id_data(config: TrainConfig) -> IdData:
    """The data set of ``config`` split by the ``random`` protocol with ``config.seed``, as ``IdData``."""
    return IdData.from_split(load_split(config, "random"))


def id_score_fn(data: IdData):
    """``make_score_fn(model)`` for the validation callback: ``data.score_fn`` of the current weights."""
    return lambda model: data.score_fn(model)


def _train_mode(
    config: TrainConfig,
    data: IdData,
    settings: NeuMFSettings,
    strategy,
    mode: str,
    model_kwargs: Dict[str, Any],
    model: Optional[NeuMF] = None,
    learning_rate: Optional[float] = None,
):
    """Trains one NCF model (built here unless given) with early stopping on val ndcg@10."""
    with strategy.scope():
        if model is None:
            model = NeuMF(data.spec, **{**model_kwargs, "mode": mode})
        model.compile(optimizer=training.make_optimizer("adam", learning_rate or settings.learning_rate))
    if config.tfrecords:  # pointwise records of pipelines/sample_negatives.py (checked against this run)
        train_ds = id_batches(
            config.tfrecords, data, config.model, "pointwise", settings.batch_size, RunSource.of(config)
        )
    else:
        train_ds = data.batches(
            settings.batch_size,
            settings.num_negatives,
            "pointwise",
            settings.negative_sampler,
            settings.popularity_alpha,
            seed=config.seed,
            max_positives=settings.max_positives,
        )
    run_dir = f"{config.run_dir}/{mode}" if config.run_dir else None
    fitted = fit_recipe(
        model,
        train_ds,
        config,
        settings,
        run_dir=run_dir,
        evaluate_fn=validation_evaluator(data.split, PROTOCOL, id_score_fn(data)),
    )
    return model, fitted


@register_recipe("neumf", model=NeuMF, settings=NeuMFSettings)
def train_neumf(config: TrainConfig) -> TrainResult:
    """GMF / MLP / NeuMF on the ``random-full`` protocol (``--set mode=gmf``, ``--set pretrain=true``).

    Returns:
        ``TrainResult`` with ``CandidateScoringArtifacts`` (features ``user_id``, ``item_id``,
        every catalogue item): NeuMF is not factorised, so it exports as a scorer of the whole
        catalogue (and of given candidate lists), and re-ranks in two-stage exports.
    """
    model_kwargs, settings = recipe_settings(config, NeuMF, NeuMFSettings())
    mode = model_kwargs.get("mode", "neumf")
    data = load_id_data(config)
    strategy = training.configure(strategy=config.strategy, precision=config.precision)
    extra: Dict[str, object] = {}
    if settings.pretrain and mode == "neumf":
        gmf, gmf_fit = _train_mode(config, data, settings, strategy, "gmf", model_kwargs)
        mlp, mlp_fit = _train_mode(config, data, settings, strategy, "mlp", model_kwargs)
        fusion = {key: model_kwargs[key] for key in ("l2", "dropout") if key in model_kwargs}
        with strategy.scope():
            fused = NeuMF.from_pretrained(gmf, mlp, alpha=settings.alpha, **fusion)
        model, fitted = _train_mode(
            config,
            data,
            settings,
            strategy,
            "neumf",
            model_kwargs,
            model=fused,
            learning_rate=settings.fused_learning_rate,
        )
        extra = {"pretrain_epochs": {"gmf": gmf_fit.epochs, "mlp": mlp_fit.epochs}}
    else:
        model, fitted = _train_mode(config, data, settings, strategy, mode, model_kwargs)
    figures = final_figures(
        data.score_fn(model), data.split, PROTOCOL, config=config, mode=mode, **extra, **fitted.figures(config.seed)
    )
    return TrainResult(
        model=model,
        figures=figures,
        history=fitted.history,
        artifacts=CandidateScoringArtifacts(
            feature_spec=data.spec,
            features=[USER_ID, ITEM_ID],
            split=data.split,
            candidates={ITEM_ID: data.item_ids},
            item_titles=data.item_titles,
            user_query_features={USER_ID: data.user_ids},
        ),
    )
