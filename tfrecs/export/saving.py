"""Shared export step: a serving module -> versioned SavedModel with assets, warmup and models.config.

Every export kind (retrieval, ranking, two-stage) builds a ``tf.Module`` with a
``serving_default`` function and hands it to ``save_export``, which

* attaches the FeatureSpec (``feature_spec.json``), one vocabulary file per feature
  (``vocab_<feature>.txt``, one value per line, in lookup order) and ``export_info.json``
  as SavedModel assets (copied into ``<version>/assets/``);
* records in ``export_info.json`` the export kind, its signature and, under ``versions``,
  the installed versions of tfrecs and its stack (``extra_info`` adds more, e.g. the
  training record ``export_trained`` passes under ``training``);
* saves ``serving_default`` plus any ``module.extra_signatures`` (name -> tf.function), with
  the ``Scann`` op namespace allowed (ScaNN indexes are graph ops);
* writes the warmup records, moves ``extra_files`` (e.g. a FAISS index under
  ``assets.extra/``) into the version, and renames it into place atomically;
* rewrites ``<export_root>/models.config``.

A failure to write (see ``tfrecs.export.layout``) is one ``StorageError`` line naming the path.
"""

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrecs.core.versions import package_versions
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.export.layout import directory_size, write_models_config, write_version
from tfrecs.export.warmup import write_warmup
from tfrecs.pipelines.tfrecord_writer import storage_error

SAVE_OPTIONS_NAMESPACES = ["Scann"]


@dataclass
class ExportResult:
    """Where an export went and what it is.

    Attributes:
        path: the version directory (``<export_root>/<model_name>/<version>``).
        model_name, version, kind: TF Serving model name, integer version, export kind
            (``retrieval``, ``ranking`` or ``two_stage``).
        size_bytes: bytes on disk of the version directory.
        seconds: wall time of the whole export (embedding, index build, save).
        info: kind-specific details (k, index report, signature inputs / outputs), also
            saved as the ``export_info.json`` asset.
        module: the in-memory serving module (not part of ``to_dict``).
    """

    path: str
    model_name: str
    version: int
    kind: str
    size_bytes: int
    seconds: float
    info: Dict[str, Any] = field(default_factory=dict)
    module: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        return {key: value for key, value in asdict(replace(self, module=None)).items() if key != "module"}


def trackable_parts(model: tf.Module) -> Dict[str, Any]:
    """The model's layers and variables to save, without optimizer, metrics, tasks or train functions.

    Saving the Keras model itself would also save optimizer slots (twice the embedding
    tables for Adam), metric state and its train functions; serving needs none of them.
    """
    import tensorflow_recommenders as tfrs
    import tf_keras

    training_only = (tf_keras.optimizers.Optimizer, tf_keras.metrics.Metric, tfrs.tasks.Task)
    parts = {}
    for name, child in model._trackable_children(save_type="checkpoint").items():
        if isinstance(child, training_only) or name == "optimizer":
            continue
        if isinstance(child, (tf.types.experimental.GenericFunction, tf.types.experimental.ConcreteFunction)):
            continue
        parts[name] = child
    return parts


def _asset_files(directory: str, spec: Optional[FeatureSpec], info: Mapping[str, Any]) -> Dict[str, str]:
    files = {"export_info": os.path.join(directory, "export_info.json")}
    with open(files["export_info"], "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=1, default=str)
    if spec is None:
        return files
    files["feature_spec"] = os.path.join(directory, "feature_spec.json")
    spec.save(files["feature_spec"])
    for feature in spec:
        if feature.vocabulary is None:
            continue
        key = f"vocab_{feature.name}"
        files[key] = os.path.join(directory, f"{key}.txt")
        with open(files[key], "w", encoding="utf-8") as handle:
            handle.writelines(f"{str(value).replace(chr(10), ' ')}\n" for value in feature.vocabulary)
    return files


def save_export(
    module: tf.Module,
    export_root: str,
    model_name: str,
    kind: str,
    info: Dict[str, Any],
    feature_spec: Optional[FeatureSpec] = None,
    warmup_requests: Optional[Sequence[Mapping[str, np.ndarray]]] = None,
    version: Optional[int] = None,
    base_path_prefix: Optional[str] = "/models",
    started: Optional[float] = None,
    extra_info: Optional[Mapping[str, Any]] = None,
    extra_files: Optional[Mapping[str, str]] = None,
) -> ExportResult:
    """Saves ``module`` (with ``module.serving_default``) as the next version of ``model_name``.

    Args:
        module: serving module; its ``serving_default`` tf.function (input signature set) is
            the ``serving_default`` signature, and ``module.extra_signatures`` (if any, a dict
            name -> tf.function) adds further signatures.
        export_root: TF Serving root (``saved_models``).
        model_name: model directory name.
        kind: ``retrieval``, ``ranking`` or ``two_stage``.
        info: JSON-friendly details saved as ``assets/export_info.json``.
        feature_spec: saved as ``assets/feature_spec.json`` plus vocabulary files.
        warmup_requests: inputs for ``assets.extra/tf_serving_warmup_requests`` (None: no file):
            input dicts for ``serving_default``, or ``(signature_name, inputs)`` pairs.
        version: integer version (default: next free).
        base_path_prefix: mount point of ``export_root`` in the server, for models.config.
        started: ``time.perf_counter()`` at the start of the export (for ``seconds``).
        extra_info: more JSON-friendly entries for ``export_info.json`` (e.g. ``training``).
        extra_files: path inside the version (e.g. ``assets.extra/faiss.index``) -> a file
            to move there before the version is renamed into place (the source is consumed).

    Returns:
        ExportResult.

    Raises:
        ValueError: the version exists, or a bad model name.
        StorageError: the export cannot be written (a root under a file, no permission, disk
            full); one line naming the path, and no version directory is left.
    """
    started = time.perf_counter() if started is None else started
    info = {
        "kind": kind,
        "model_name": model_name,
        "tensorflow": tf.__version__,
        **info,
        **dict(extra_info or {}),
        "versions": package_versions(),
    }
    signatures = {"serving_default": module.serving_default, **dict(getattr(module, "extra_signatures", None) or {})}
    with tempfile.TemporaryDirectory() as scratch:
        try:
            files = _asset_files(scratch, feature_spec, info)
        except OSError as error:
            raise storage_error(scratch, error, "write the export's asset files in the scratch directory") from None
        module.assets = {key: tf.saved_model.Asset(path) for key, path in files.items()}

        def write(directory: str) -> None:
            tf.saved_model.save(
                module,
                directory,
                signatures=signatures,
                options=tf.saved_model.SaveOptions(namespace_whitelist=SAVE_OPTIONS_NAMESPACES),
            )
            if warmup_requests:
                write_warmup(directory, model_name, list(warmup_requests))
            for relative, source in (extra_files or {}).items():
                target = os.path.join(directory, relative)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.move(source, target)

        path = write_version(export_root, model_name, write, version=version)
    write_models_config(export_root, base_path_prefix)
    return ExportResult(
        path=path,
        model_name=model_name,
        version=int(os.path.basename(path)),
        kind=kind,
        size_bytes=directory_size(path),
        seconds=round(time.perf_counter() - started, 3),
        info=info,
        module=module,
    )


def warmup_batches(
    examples: Mapping[str, np.ndarray], extra: Optional[Mapping[str, np.ndarray]] = None, sizes: Sequence[int] = (1, 4)
) -> List[Dict[str, np.ndarray]]:
    """Warmup requests: the first ``size`` example rows for each size (plus ``extra`` inputs on the last)."""
    total = min(len(v) for v in examples.values())
    requests = [{name: values[: min(size, total)] for name, values in examples.items()} for size in sizes]
    if extra:
        requests[-1] = {**requests[-1], **extra}
    return requests
