"""Ranking export: raw features -> probability (binary tasks) or score (regression tasks).

The ``serving_default`` signature of a ranking export takes the model's raw features
(training names and dtypes) and returns ``[batch]`` float32 outputs: ``probability`` for a
single binary task (the sigmoid of the logit), ``score`` for a single regression task, and
``<task>_probability`` / ``<task>_score`` per task for multi-task models such as MMoE.

Example::

    result = train(TrainConfig(model="deepfm", dataset="ml-100k"))
    export_ranking(result.model, "saved_models", "deepfm",
                   feature_spec=result.artifacts["feature_spec"], features=result.artifacts["features"])
"""

import time
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.export.layout import resolve_version
from tfrecs.export.saving import ExportResult, save_export, trackable_parts, warmup_batches
from tfrecs.export.signature import checked_features, describe, example_features, feature_signature, missing_feature

TASK_KINDS = ("binary", "regression")


def task_kinds(model: Any, overrides: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Task name -> ``binary`` or ``regression``, read from a RankingModel's TFRS tasks.

    A task whose loss is a binary cross-entropy is binary; any other is regression. Models
    without ``ranking_tasks`` are taken as one binary task named ``label``.

    Raises:
        ValueError: an override names an unknown kind.
    """
    tasks = getattr(model, "ranking_tasks", None) or {"label": None}
    kinds = {}
    for name, task in tasks.items():
        loss = getattr(task, "_loss", None)
        kinds[name] = (
            "regression" if loss is not None and not isinstance(loss, tf_keras.losses.BinaryCrossentropy) else "binary"
        )
    for name, kind in (overrides or {}).items():
        if kind not in TASK_KINDS:
            raise ValueError(f"task_kinds[{name!r}]={kind!r}; choose one of {TASK_KINDS}.")
        kinds[name] = kind
    return kinds


def output_names(kinds: Mapping[str, str]) -> Dict[str, str]:
    """Task name -> signature output name (``probability`` / ``score``, prefixed by task if several)."""
    suffix = {"binary": "probability", "regression": "score"}
    if len(kinds) == 1:
        return {name: suffix[kind] for name, kind in kinds.items()}
    return {name: f"{name}_{suffix[kind]}" for name, kind in kinds.items()}


def ranking_outputs(model: Any, features: Mapping[str, tf.Tensor], kinds: Mapping[str, str]) -> Dict[str, tf.Tensor]:
    """Signature outputs (name -> ``[batch]`` float32) of a ranking model on raw features."""
    logits = model(dict(features), training=False)
    if not isinstance(logits, Mapping):
        logits = {next(iter(kinds)): logits}
    missing = sorted(set(kinds) - set(logits))
    if missing:
        raise ValueError(
            f"{type(model).__name__}.call returned no logits for task(s) {missing}; it returned {sorted(logits)}."
        )
    names = output_names(kinds)
    outputs = {}
    for task, kind in kinds.items():
        value = tf.reshape(tf.cast(logits[task], tf.float32), [-1])
        outputs[names[task]] = tf.sigmoid(value) if kind == "binary" else value
    return outputs


def check_ranking_model(model: Any, examples: Mapping[str, np.ndarray], kinds: Mapping[str, str]) -> None:
    """Runs the model on example inputs.

    Raises:
        ValueError: the model does not implement ``call``, reads a feature the signature lacks,
            or returns logits of the wrong shape or for the wrong tasks.
    """
    name = type(model).__name__
    tensors = {key: tf.constant(value) for key, value in examples.items()}
    batch = len(next(iter(examples.values())))
    try:
        outputs = ranking_outputs(model, tensors, kinds)
    except NotImplementedError as error:
        raise ValueError(f"model {name} cannot rank: {error}") from None
    except KeyError as error:
        raise ValueError(
            f"{name} reads feature {missing_feature(error)} which is not among the ranking "
            f"features {sorted(examples)}; add it to features."
        ) from None
    for output, value in outputs.items():
        if value.shape[0] != batch:
            raise ValueError(
                f"{name}: output {output!r} has {value.shape[0]} values for a batch of {batch}; "
                "call() must return one logit per example."
            )


class RankingModule(tf.Module):
    """Serving module of a ranking model; ``serving_default`` maps raw features to outputs."""

    def __init__(self, model: Any, signature: Mapping[str, tf.TensorSpec], kinds: Mapping[str, str]):
        super().__init__(name="ranking")
        self.model_parts = trackable_parts(model)
        self.serving_default = tf.function(
            lambda features: ranking_outputs(model, checked_features(features, signature), kinds),
            input_signature=[dict(signature)],
        )


def export_ranking(
    model: Any,
    export_root: str,
    model_name: str,
    feature_spec: Optional[FeatureSpec] = None,
    features: Optional[Sequence[str]] = None,
    columns: Optional[Mapping[str, np.ndarray]] = None,
    signature_overrides: Optional[Mapping[str, tf.TensorSpec]] = None,
    task_kinds_overrides: Optional[Mapping[str, str]] = None,
    version: Optional[int] = None,
    warmup: bool = True,
    base_path_prefix: Optional[str] = "/models",
    extra_info: Optional[Mapping[str, Any]] = None,
) -> ExportResult:
    """Exports a ranking (CTR / multi-task) model serving raw features.

    Args:
        model: a RankingModel (``call(features) -> logits`` or ``{task: logits}``).
        export_root: TF Serving root directory.
        model_name: model directory / TF Serving model name.
        feature_spec: fitted FeatureSpec (signature dtypes, vocabulary assets).
        features: raw features the model reads (TrainResult.artifacts["features"]), without labels.
        columns: training columns; their dtypes and first rows shape the signature and warmup.
        signature_overrides: explicit TensorSpecs by feature name.
        task_kinds_overrides: task -> ``binary`` / ``regression`` where the loss does not tell.
        version: integer version (default: next free).
        warmup: write the TF Serving warmup file.
        base_path_prefix: where export_root is mounted in TF Serving (models.config).
        extra_info: more entries for ``export_info.json`` (``export_trained``: the training record).

    Returns:
        ExportResult; ``info["outputs"]`` maps tasks to output names.

    Raises:
        ValueError: a model that cannot rank, unknown features, a version that exists.
    """
    started = time.perf_counter()
    resolve_version(export_root, model_name, version)  # fail before any work
    names = list(features or (signature_overrides or {}))
    signature = feature_signature(feature_spec, names, columns=columns, overrides=signature_overrides)
    kinds = task_kinds(model, task_kinds_overrides)
    examples = example_features(signature, feature_spec, num_rows=4, columns=columns)
    check_ranking_model(model, examples, kinds)
    module = RankingModule(model, signature, kinds)
    info = {"inputs": describe(signature), "outputs": output_names(kinds), "task_kinds": kinds}
    requests = warmup_batches(examples) if warmup else None
    return save_export(
        module,
        export_root,
        model_name,
        "ranking",
        info,
        feature_spec,
        requests,
        version,
        base_path_prefix,
        started,
        extra_info,
    )
