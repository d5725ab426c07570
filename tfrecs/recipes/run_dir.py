"""A finished run's directory: train once, evaluate and export that model many times.

``tfrecs train --run-dir R`` ends with ``save_run``; ``R`` then holds, beside the TensorBoard
logs and checkpoints of ``tfrecs.training.fit``:

- ``model.keras``: the trained model, a plain Keras file (``tf_keras.models.load_model``),
- ``weights/``: the same weights as a TensorFlow checkpoint, which a recipe restores into
  the model it builds (``restore_trained``) instead of fitting,
- ``feature_spec.json``: the model's ``FeatureSpec`` (when it has one),
- ``run.json`` (written last: its presence means the run finished): the record of the run
  (``run_record``): data set, split, seed, the ``TrainConfig``, the resolved model
  hyper-parameters and training settings, the per-epoch history, the figures and the
  package versions.

``tfrecs evaluate --run-dir R`` and ``tfrecs export --run-dir R`` rebuild the run's
``TrainConfig`` (``config_from_run``) with ``restore_from=R``: the recipe builds its data
and model as in training, then loads these weights; nothing is fitted.

Example::

    result = train(TrainConfig(model="deepfm", run_dir="runs/deepfm"))   # saves the run
    again = train(config_from_run("runs/deepfm"))                        # no fitting
    assert again.figures["auc"] == result.figures["auc"]
"""

import dataclasses
import json
import os
import shutil
from typing import Any, Dict, Optional

from tfrecs.core.errors import InputError
from tfrecs.core.versions import package_versions
from tfrecs.recipes.config import TrainConfig, TrainResult

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
WEIGHTS = os.path.join("weights", "model")
SPEC_FILE = "feature_spec.json"
# TrainConfig fields that describe this process, not the run
_NOT_RECORDED = ("verbose", "restore_from", "run_dir")


def _json_ready(value: Any) -> Any:
    """``value`` with tuples as lists and anything JSON cannot hold as its text."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return str(value)


def model_hyperparameters(model: Any) -> Dict[str, Any]:
    """The model's constructor arguments (``get_config``) without its data (spec, ids, features)."""
    from tfrecs.recipes.config import NOT_SETTABLE

    try:
        config = model.get_config()
    except (NotImplementedError, AttributeError):
        return {}
    return {key: _json_ready(value) for key, value in config.items() if key not in NOT_SETTABLE}


def training_settings(config: TrainConfig) -> Dict[str, Any]:
    """The recipe's training settings as this run resolved them (defaults < ``--set`` < ``--epochs`` ...)."""
    from tfrecs.recipes.registry import declared_parameters
    from tfrecs.recipes.skeleton import recipe_settings

    declared = declared_parameters(config.model)
    if declared is None:
        return {}
    model_cls, settings, model_defaults = declared
    settings = settings() if isinstance(settings, type) else settings
    _, resolved = recipe_settings(config, model_cls, settings, model_defaults)
    return _json_ready(dataclasses.asdict(resolved))


def run_record(config: TrainConfig, result: TrainResult) -> Dict[str, Any]:
    """What ``run.json`` and ``export_info.json`` say of a run."""
    recorded = {key: value for key, value in dataclasses.asdict(config).items() if key not in _NOT_RECORDED}
    if recorded.get("data") and recorded["data"].get("path"):
        recorded["data"] = {**recorded["data"], "path": os.path.abspath(str(recorded["data"]["path"]))}
    for key in ("data_dir", "cache_dir", "tfrecords"):
        if recorded.get(key):
            recorded[key] = os.path.abspath(str(recorded[key]))
    figures = result.figures
    return _json_ready(
        {
            "model": config.model,
            "dataset": config.dataset,
            "split": getattr(getattr(result.artifacts, "split", None), "protocol", None) or figures.get("protocol"),
            "seed": config.seed,
            "config": recorded,
            "model_hyperparameters": model_hyperparameters(result.model),
            "training_settings": training_settings(config),
            "history": result.history,
            "figures": figures,
            "versions": package_versions(),
        }
    )


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def _replace_atomically(path: str, write) -> None:
    """``write(temporary path)``, then rename it onto ``path`` (a file or a directory)."""
    temporary = f"{path}.tmp"
    _remove(temporary)
    write(temporary)
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(temporary, path)


def save_run(run_dir: str, config: TrainConfig, result: TrainResult) -> Dict[str, Any]:
    """Writes the trained model, its weights, its FeatureSpec and ``run.json`` (last) into ``run_dir``.

    Returns:
        The record written to ``run.json`` (also set as ``result.record``).
    """
    os.makedirs(run_dir, exist_ok=True)
    record = run_record(config, result)
    model = result.model

    def write_weights(directory: str) -> None:
        os.makedirs(directory)
        model.save_weights(os.path.join(directory, os.path.basename(WEIGHTS)))

    _replace_atomically(os.path.join(run_dir, os.path.dirname(WEIGHTS)), write_weights)
    _replace_atomically(os.path.join(run_dir, MODEL_FILE), lambda path: _save_keras(model, path))
    spec = getattr(getattr(result, "artifacts", None), "feature_spec", None) or getattr(model, "spec", None)
    if spec is not None and hasattr(spec, "to_config"):
        _replace_atomically(os.path.join(run_dir, SPEC_FILE), lambda path: _write_json(path, spec.to_config()))
    _replace_atomically(os.path.join(run_dir, RUN_FILE), lambda path: _write_json(path, record))
    result.record = record
    return record


def _save_keras(model: Any, path: str) -> None:
    # `.keras` needs the extension; the temporary name gets it and is renamed after.
    staged = f"{path}.keras"
    model.save(staged)
    os.replace(staged, path)


def _write_json(path: str, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(_json_ready(value), handle, indent=2)
        handle.write("\n")


def load_record(run_dir: str) -> Dict[str, Any]:
    """``run_dir/run.json``.

    Raises:
        InputError: ``run_dir`` holds no finished run (says what it holds instead).
    """
    path = os.path.join(run_dir, RUN_FILE)
    if not os.path.isfile(path):
        if not os.path.isdir(run_dir):
            raise InputError(f"--run-dir {run_dir}: no such directory; train first with tfrecs train --run-dir")
        unfinished = os.path.isdir(os.path.join(run_dir, "backup"))
        what = (
            "an unfinished run (a backup, no run.json): run the same tfrecs train command again to finish it"
            if unfinished
            else "no finished run (no run.json): train first with tfrecs train --run-dir"
        )
        raise InputError(f"--run-dir {run_dir} holds {what}")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def config_from_run(run_dir: str, **overrides: Any) -> TrainConfig:
    """The ``TrainConfig`` of the finished run in ``run_dir``, set to restore its model (no fitting).

    Args:
        run_dir: a directory ``tfrecs train --run-dir`` finished.
        overrides: ``TrainConfig`` fields to change (``verbose``, ``evaluation``).
    """
    record = load_record(run_dir)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    kept = {key: value for key, value in record["config"].items() if key in fields}
    if isinstance(kept.get("hparams"), dict):  # JSON turned tuples into lists
        kept["hparams"] = {key: tuple(v) if isinstance(v, list) else v for key, v in kept["hparams"].items()}
    return TrainConfig(**{**kept, **overrides, "restore_from": run_dir})


def finished(run_dir: Optional[str]) -> bool:
    """Whether ``run_dir`` holds a finished run (``run.json``)."""
    return bool(run_dir) and os.path.isfile(os.path.join(run_dir, RUN_FILE))


def restore_trained(model: Any, run_dir: str) -> Dict[str, Any]:
    """Loads the weights saved in ``run_dir`` into ``model`` (built like the trained one).

    Returns:
        The run's record (its ``history`` gives the epochs run and the best epoch).

    Raises:
        InputError: ``run_dir`` holds no finished run, or weights that do not fit ``model``.
    """
    record = load_record(run_dir)
    try:
        model.load_weights(os.path.join(run_dir, WEIGHTS)).expect_partial()
    except (ValueError, AssertionError) as error:
        raise InputError(
            f"--run-dir {run_dir}: its weights do not fit the model the run's config builds "
            f"(was the data changed since training?): {' '.join(str(error).split())[:300]}"
        ) from None
    return record
