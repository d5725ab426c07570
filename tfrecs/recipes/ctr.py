"""Every CTR / ranking recipe, as one table: model name -> model class + recipe defaults.

Each recipe: settings -> the CTR view of the ``random-global`` split
(``tfrecs.pipelines.ctr_view``) -> model -> fit (Adam, early stopping on validation AUC,
best weights restored) -> test figures. Figures: ``auc``, ``logloss``, ``gauc`` (per-user
AUC weighted by rows; multi-task models: of the ``like`` task, plus the ``rating`` task's
``rmse`` and ``mae``, and with uncertainty weighting the learned ``task_weights``), then
``split: "test"``, ``protocol: "ctr-random-global"``, ``epochs``, ``seconds_per_epoch``,
``seed``. Artifacts: ``RankingArtifacts``.

``--set key=value`` takes the model's constructor keywords (``tfrecs.recipes.config.
model_parameters``) and the training settings of ``CtrSettings`` (``epochs``,
``batch_size``, ``learning_rate``, ``patience``, ``features``; DIN also ``history_length``). Where a
recipe departs from the paper default it says so in ``CTR_RECIPES``:

* ``xdeepfm``: CIN ``(100, 100)``, not the paper's Criteo ``(200, 200, 200)``: on this
  7-field, 80k-row view the paper's CIN took 6x the time per epoch (209 s vs 34 s) for the
  same validation AUC after two epochs (0.7793 vs 0.7796);
  ``--set cin_layer_sizes=200,200,200`` restores it.
* ``mmoe`` / ``shared_bottom``: experts (or the bottom) of 128-64.

Example::

    from tfrecs.recipes import TrainConfig, train
    train(TrainConfig(model="deepfm", epochs=3, hparams={"dropout": 0.2})).figures["auc"]
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfrecs import training
from tfrecs.data.dataset import RATING, USER_ID
from tfrecs.evaluation.ctr_metrics import auc, gauc, log_loss
from tfrecs.export.artifacts import RankingArtifacts
from tfrecs.models.dcn import DCN, DCNv2
from tfrecs.models.deepfm import DeepFM
from tfrecs.models.din import DIN
from tfrecs.models.mmoe import MMoE, SharedBottom
from tfrecs.models.wide_deep import WideDeep
from tfrecs.models.xdeepfm import XDeepFM
from tfrecs.pipelines.ctr_view import (
    CTR_SPLIT,
    HISTORY,
    LABEL,
    MULTITASK_LABEL_KEYS,
    PROTOCOL,
    CtrData,
    load_ctr_data,
)
from tfrecs.pipelines.tfrecord_training import RunSource, ctr_batches
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.skeleton import fit_recipe, load_split, ranking_part, recipe_settings


@dataclass
class CtrSettings:
    """Training settings of a CTR recipe (``TrainConfig.epochs`` etc. override them).

    Attributes:
        epochs: most epochs (early stopping on validation AUC usually ends sooner).
        batch_size: rows per training batch.
        learning_rate: Adam's learning rate.
        patience: epochs without a better validation AUC before stopping (best weights restored).
        features: the features the model reads, e.g. ``user_id,item_id`` (None: the CTR
            view's built-in features the data has columns for; a named feature the data
            lacks is an error naming it).
    """

    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 1e-3
    patience: int = 2
    features: Optional[Tuple[str, ...]] = None


@dataclass
class DinSettings(CtrSettings):
    """``CtrSettings`` plus the length of DIN's behaviour sequence.

    Attributes:
        history_length: most recent earlier items in each row's ``history``.
    """

    history_length: int = 50


@dataclass(frozen=True)
class CtrRecipe:
    """One row of ``CTR_RECIPES``.

    Attributes:
        model: the model class.
        model_defaults: keywords where the recipe departs from the paper default.
        settings: training settings (defaults).
    """

    model: type
    model_defaults: Dict[str, Any] = field(default_factory=dict)
    settings: CtrSettings = field(default_factory=CtrSettings)

    @property
    def multitask(self) -> bool:
        return issubclass(self.model, MMoE)


CTR_RECIPES: Dict[str, CtrRecipe] = {
    "wide_deep": CtrRecipe(WideDeep),
    "deepfm": CtrRecipe(DeepFM),
    "xdeepfm": CtrRecipe(XDeepFM, {"cin_layer_sizes": (100, 100)}),
    "dcn": CtrRecipe(DCN),
    "dcn_v2": CtrRecipe(DCNv2),
    "din": CtrRecipe(DIN, settings=DinSettings()),
    "mmoe": CtrRecipe(MMoE, {"expert_units": (128, 64)}),
    "shared_bottom": CtrRecipe(SharedBottom, {"expert_units": (128, 64)}),
}


def ctr_figures(model, data: CtrData, part: str = "test") -> Dict[str, float]:
    """``auc``, ``logloss``, ``gauc`` (by ``user_id``) of the click / like probabilities on
    ``part``; for a model with a ``rating`` task also its ``rmse`` and ``mae``."""
    predictions = model.predict(data.dataset(part, 4096), verbose=0)
    by_task = predictions if isinstance(predictions, dict) else {"like": predictions}
    columns = data.columns[part]
    probabilities = np.asarray(by_task["like"], np.float64).reshape(-1)
    labels = columns[LABEL]
    figures = {
        "auc": auc(labels, probabilities),
        "logloss": log_loss(labels, probabilities),
        "gauc": gauc(columns[USER_ID], labels, probabilities),
    }
    if "rating" in by_task:
        errors = np.asarray(by_task["rating"], np.float64).reshape(-1) - columns[RATING]
        figures.update(rmse=float(np.sqrt(np.mean(errors**2))), mae=float(np.mean(np.abs(errors))))
    return figures


def _wiring(recipe: CtrRecipe, data: CtrData) -> Dict[str, Any]:
    """Constructor keywords that come from the data, not from hyper-parameters."""
    if recipe.multitask:
        return {"label_keys": dict(MULTITASK_LABEL_KEYS), "initial_bias": data.initial_bias()}
    return {}


def _serving_signature(data: CtrData) -> Optional[Dict[str, tf.TensorSpec]]:
    """The padded ``history`` input of DIN (the spec does not describe it)."""
    if HISTORY not in data.features:
        return None
    history = data.columns["train"][HISTORY]
    return {HISTORY: tf.TensorSpec([None, history.shape[1]], tf.string if history.dtype.kind in "OU" else tf.int64)}


def train_ctr(config: TrainConfig, name: str) -> TrainResult:
    """Fits the model of ``CTR_RECIPES[name]`` on the CTR view and reports test figures.

    Raises:
        ValueError: a ``--set`` key that is neither a model keyword nor a training setting.
    """
    recipe = CTR_RECIPES[name]
    model_kwargs, settings = recipe_settings(config, recipe.model, recipe.settings, recipe.model_defaults)
    split = load_split(config, CTR_SPLIT)
    data = load_ctr_data(
        split,
        history_length=getattr(settings, "history_length", None),
        rating=recipe.multitask,
        features=settings.features,
    )
    if config.tfrecords:  # what pipelines/build_tfrecords.py wrote (checked against this run)
        train_ds = ctr_batches(config.tfrecords, data, name, settings.batch_size, RunSource.of(config))
    else:
        train_ds = data.dataset("train", settings.batch_size, shuffle=True, seed=config.seed)
    strategy = training.configure(config.strategy, config.precision)
    with strategy.scope():
        model = recipe.model(data.spec, features=list(data.features), **{**_wiring(recipe, data), **model_kwargs})
        model.compile(optimizer=training.make_optimizer("adam", learning_rate=settings.learning_rate))
    fitted = fit_recipe(
        model,
        train_ds,
        config,
        settings,
        validation_data=data.dataset("valid", 4096),
        monitor="val_like/auc" if recipe.multitask else "val_auc",
    )
    part = ranking_part(config)
    figures = {**ctr_figures(model, data, part), "split": part, "protocol": PROTOCOL, **fitted.figures(config.seed)}
    if getattr(model, "uncertainty_weighting", False):
        figures["task_weights"] = model.task_weights()
    artifacts = RankingArtifacts(
        feature_spec=data.spec,
        features=list(data.features),
        split=data.split,
        serving_signature=_serving_signature(data),
    )
    return TrainResult(model=model, figures=figures, history=fitted.history, artifacts=artifacts)


def _register(name: str) -> None:
    def recipe(config: TrainConfig) -> TrainResult:
        return train_ctr(config, name)

    recipe.__name__ = f"{name}_recipe"
    recipe.__doc__ = f"Trains {CTR_RECIPES[name].model.__name__} on the CTR view (``tfrecs.recipes.ctr``)."
    entry = CTR_RECIPES[name]
    register_recipe(name, model=entry.model, settings=entry.settings, model_defaults=entry.model_defaults)(recipe)


for _name in CTR_RECIPES:
    _register(_name)
