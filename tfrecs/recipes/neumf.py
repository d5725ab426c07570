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

import tf_keras

from tfrecs import training
from tfrecs.data.dataset import ITEM_ID, USER_ID
from tfrecs.data.registry import load_dataset
from tfrecs.data.splits import make_split
from tfrecs.export.artifacts import RankingArtifacts
from tfrecs.models.neumf import NeuMF
from tfrecs.pipelines.id_view import IdData
from tfrecs.pipelines.negative_sampling import DEFAULT_ALPHA
from tfrecs.recipes.config import TrainConfig, TrainResult, split_overrides
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.retrieval_common import final_figures, history_seconds_per_epoch, validation_evaluator
from tfrecs.training.callbacks import EpochTimer, best_epoch

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
    dataset = load_dataset(config.dataset, data_dir=config.data_dir, cache_dir=config.cache_dir, seed=config.seed)
    return IdData.from_split(make_split(dataset, "random", seed=config.seed))


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
    batch_size = config.batch_size or settings.batch_size
    with strategy.scope():
        if model is None:
            model = NeuMF(data.spec, **{**model_kwargs, "mode": mode})
        model.compile(
            optimizer=training.make_optimizer("adam", learning_rate or config.learning_rate or settings.learning_rate)
        )
    train_ds = data.batches(
        batch_size,
        settings.num_negatives,
        "pointwise",
        settings.negative_sampler,
        settings.popularity_alpha,
        seed=config.seed,
        max_positives=settings.max_positives,
    )
    timer = EpochTimer()
    run_dir = f"{config.run_dir}/{mode}" if config.run_dir else None
    history = training.fit(
        model,
        train_ds,
        epochs=config.epochs or settings.epochs,
        run_dir=run_dir,
        monitor="val_ndcg@10",
        patience=settings.patience,
        callbacks=[timer],
        verbose=config.verbose,
        evaluate_fn=validation_evaluator(data.split, PROTOCOL, id_score_fn(data)),
    )
    return model, history.history, timer.seconds


@register_recipe("neumf")
def train_neumf(config: TrainConfig) -> TrainResult:
    """GMF / MLP / NeuMF on the ``random-full`` protocol (``--set mode=gmf``, ``--set pretrain=true``).

    Returns:
        ``TrainResult`` with ``RankingArtifacts`` (features ``user_id``, ``item_id``): NeuMF is
        not factorised, so it exports as a (user, item) scorer.
    """
    model_kwargs, settings = split_overrides(config.hparams, NeuMF, NeuMFSettings(), "neumf")
    mode = model_kwargs.get("mode", "neumf")
    tf_keras.utils.set_random_seed(config.seed)
    data = load_id_data(config)
    strategy = training.configure(strategy=config.strategy, precision=config.precision)
    extra: Dict[str, object] = {}
    if settings.pretrain and mode == "neumf":
        gmf, gmf_history, _ = _train_mode(config, data, settings, strategy, "gmf", model_kwargs)
        mlp, mlp_history, _ = _train_mode(config, data, settings, strategy, "mlp", model_kwargs)
        fusion = {key: model_kwargs[key] for key in ("l2", "dropout") if key in model_kwargs}
        with strategy.scope():
            fused = NeuMF.from_pretrained(gmf, mlp, alpha=settings.alpha, **fusion)
        model, history, seconds = _train_mode(
            config,
            data,
            settings,
            strategy,
            "neumf",
            model_kwargs,
            model=fused,
            learning_rate=settings.fused_learning_rate,
        )
        extra = {"pretrain_epochs": {"gmf": len(gmf_history["loss"]), "mlp": len(mlp_history["loss"])}}
    else:
        model, history, seconds = _train_mode(config, data, settings, strategy, mode, model_kwargs)
    figures = final_figures(
        data.score_fn(model),
        data.split,
        PROTOCOL,
        epochs=len(history["loss"]),
        seconds_per_epoch=history_seconds_per_epoch(seconds),
        seed=config.seed,
        best_epoch=best_epoch(history),
        mode=mode,
        **extra,
    )
    return TrainResult(
        model=model,
        figures=figures,
        history=history,
        artifacts=RankingArtifacts(feature_spec=data.spec, features=[USER_ID, ITEM_ID], split=data.split),
    )
