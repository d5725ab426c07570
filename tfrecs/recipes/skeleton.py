"""The one skeleton every recipe follows: settings -> view -> model -> fit -> figures.

``recipe_settings`` resolves a recipe's model keywords and training settings from a
``TrainConfig`` (``--set`` overrides, then ``--epochs`` / ``--batch-size`` /
``--learning-rate``); ``fit_recipe`` fits with early stopping on a validation figure and
returns what every results row records (epochs run, seconds per epoch).

Example::

    model_kwargs, settings = recipe_settings(config, DeepFM, CtrSettings(), {"dropout": 0.5})
    with strategy.scope():
        model = DeepFM(data.spec, data.features, **model_kwargs)
        model.compile(optimizer=training.make_optimizer("adam", settings.learning_rate))
    fitted = fit_recipe(model, train_ds, config, settings, validation_data=valid_ds, monitor="val_auc")
    figures = {**test_figures, **fitted.figures(config.seed)}
"""

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import tf_keras

from tfrecs import training
from tfrecs.core.errors import InputError
from tfrecs.data.registry import load_dataset
from tfrecs.data.splits import Split, make_split
from tfrecs.recipes.config import TrainConfig, split_overrides
from tfrecs.recipes.retrieval_common import history_seconds_per_epoch
from tfrecs.training.callbacks import EpochTimer, best_epoch
from tfrecs.training.fit import build_on_first_batch

CONFIG_SETTINGS = ("epochs", "batch_size", "learning_rate")


def recipe_settings(
    config: TrainConfig, model_cls: type, settings: Any, model_defaults: Optional[Dict[str, Any]] = None
) -> Tuple[Dict[str, Any], Any]:
    """``(model keywords, training settings)`` of a run: recipe defaults < ``--set`` < ``--epochs`` etc.

    Raises:
        InputError: an unknown ``--set`` key or a value of the wrong type or range (names it).
    """
    model_kwargs, settings = split_overrides(config.hparams, model_cls, settings, config.model, model_defaults)
    names = {f.name for f in dataclasses.fields(settings)}
    given = {name: getattr(config, name) for name in CONFIG_SETTINGS if name in names and getattr(config, name)}
    return model_kwargs, dataclasses.replace(settings, **given)


def load_split(config: TrainConfig, split: str) -> Split:
    """``config.dataset`` (or the user's ``config.data``) split by ``split`` with ``config.seed``.

    Seeds Python, NumPy and TensorFlow first.
    """
    tf_keras.utils.set_random_seed(config.seed)
    if config.data:
        from tfrecs.data import from_files

        dataset = from_files(**config.data)
    else:
        dataset = load_dataset(config.dataset, data_dir=config.data_dir, cache_dir=config.cache_dir, seed=config.seed)
    return make_split(dataset, split, seed=config.seed)


def ranking_part(config: TrainConfig) -> str:
    """The part a ranking (CTR) recipe reports (``test`` unless ``config.evaluation`` says ``valid``).

    Raises:
        InputError: ``config.evaluation`` names a protocol or cut-offs: ranking models are
            measured by AUC / LogLoss on their own split.
    """
    asked = dict(config.evaluation or {})
    extra = sorted(key for key in asked if key != "split" and asked[key] is not None)
    if extra:
        raise InputError(
            f"{config.model} is a ranking model measured by AUC and LogLoss on its own split; "
            f"{', '.join('--' + key for key in extra)} applies to retrieval models (only --split valid|test here)"
        )
    return asked.get("split") or "test"


@dataclass
class Fitted:
    """What a recipe's fit hands on: the Keras history, epochs run and mean seconds per epoch."""

    history: Dict[str, List[float]] = field(default_factory=dict)
    epochs: int = 0
    seconds_per_epoch: float = 0.0
    monitor: str = "val_ndcg@10"

    def figures(self, seed: int) -> Dict[str, Any]:
        """The training part of a results row: epochs run, best epoch, seconds per epoch, seed."""
        return {
            "epochs": self.epochs,
            "best_epoch": best_epoch(self.history, self.monitor),
            "seconds_per_epoch": self.seconds_per_epoch,
            "seed": seed,
        }


def fit_recipe(
    model,
    train_ds,
    config: TrainConfig,
    settings: Any,
    *,
    monitor: str = "val_ndcg@10",
    evaluate_fn: Optional[Callable] = None,
    validation_data=None,
    run_dir: Optional[str] = None,
    **fit_kwargs,
) -> Fitted:
    """``tfrecs.training.fit`` with the recipe's epochs, patience and evaluation cadence, timed per epoch.

    With ``config.restore_from`` (a finished run directory) nothing is fitted: the model is
    built on one training batch and that run's weights are loaded (``run_dir.restore_trained``);
    the returned ``Fitted`` is the run's.

    Args:
        model: a compiled model.
        train_ds: its training batches.
        config: the run's ``TrainConfig`` (run directory, verbosity).
        settings: training settings with ``epochs`` and ``patience`` (``evaluate_every``
            when the settings have it).
        monitor: the validation figure early stopping watches (higher is better).
        evaluate_fn, validation_data: where the validation figure comes from.
        run_dir: overrides ``config.run_dir`` (e.g. a sub-directory per pre-training stage).
    """
    if config.restore_from:
        return restored_fit(model, train_ds, config.restore_from, monitor)
    timer = EpochTimer()
    start = time.perf_counter()
    history = training.fit(
        model,
        train_ds,
        epochs=settings.epochs,
        run_dir=run_dir if run_dir is not None else config.run_dir,
        monitor=monitor,
        mode="max",
        patience=settings.patience,
        evaluate_fn=evaluate_fn,
        evaluate_every=getattr(settings, "evaluate_every", 1),
        validation_data=validation_data,
        callbacks=[timer],
        verbose=config.verbose,
        **fit_kwargs,
    )
    seconds = timer.seconds or [time.perf_counter() - start]
    logs = dict(history.history)
    return Fitted(logs, len(logs.get("loss", [])), history_seconds_per_epoch(seconds), monitor)


def restored_fit(model, train_ds, run_dir: str, monitor: str = "val_ndcg@10") -> Fitted:
    """Builds ``model`` on one batch of ``train_ds``, loads the weights of the finished run in
    ``run_dir`` into it, and returns that run's ``Fitted`` (history, epochs, seconds per epoch)."""
    from tfrecs.recipes.run_dir import restore_trained

    build_on_first_batch(model, train_ds)
    record = restore_trained(model, run_dir)
    history = {key: list(values) for key, values in record.get("history", {}).items()}
    figures = record.get("figures", {})
    return Fitted(
        history,
        int(figures.get("epochs", len(history.get("loss", [])))),
        figures.get("seconds_per_epoch", 0.0),
        monitor,
    )
