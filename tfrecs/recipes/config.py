"""What a training job is asked to do (``TrainConfig``) and what it hands back (``TrainResult``)."""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from tfrecs.core.errors import InputError


@dataclass
class TrainConfig:
    """Settings shared by every recipe; ``None`` means "the model's paper default".

    Args:
        model: registered model name, e.g. ``"two_tower"``.
        dataset: data set name, e.g. ``"ml-100k"``.
        epochs, batch_size, learning_rate: overrides of the recipe's defaults.
        seed: seed of the split, initialisation and sampling.
        strategy: one of ``tfrecs.training.STRATEGIES``: ``auto``, ``one_device``,
            ``mirrored``, ``multi_worker`` (each device holds the whole model) or
            ``parameter_server`` (tables sharded over parameter servers; run this
            job in the chief, see docs/training.md).
        precision: ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.
        run_dir: where logs, checkpoints and backups go (None: no files).
        hparams: model hyper-parameter overrides by name (``--set dim=64``).
        data_dir, cache_dir: data source locations (see ``tfrecs.data.load_dataset``).
        data: the user's own data instead of a named data set: keyword arguments of
            ``tfrecs.data.from_files`` (``path``, ``user``, ``item``, ``timestamp``, ...);
            ``dataset`` then only names it in figures.
        verbose: Keras progress-bar verbosity.
        tfrecords: a directory written by a ``pipelines/`` script (``build_tfrecords``,
            ``sample_negatives``, ``window_sequences``): the training batches are read from
            its ``train/`` records instead of being built from the data set (its
            ``schema.json`` is checked against the model's inputs).
        restore_from: a run directory of a finished ``tfrecs train --run-dir``: the recipe
            loads that trained model instead of fitting (``tfrecs evaluate / export --run-dir``).
        evaluation: how the reported figures are measured, when not the recipe's own way:
            ``{"protocol": "random-sampled", "split": "valid", "ks": [5, 10], "num_negatives": 100}``
            (any subset; the protocol must use the split the model was trained on).
    """

    model: str
    dataset: str = "ml-100k"
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None
    seed: int = 2020
    strategy: str = "auto"
    precision: str = "float32"
    run_dir: Optional[str] = None
    hparams: Dict[str, Any] = field(default_factory=dict)
    data_dir: Optional[str] = None
    cache_dir: Optional[str] = None
    verbose: Any = "auto"
    data: Optional[Dict[str, Any]] = None
    tfrecords: Optional[str] = None
    restore_from: Optional[str] = None
    evaluation: Optional[Dict[str, Any]] = None

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(
                    f"{name} must be a whole number >= 1 (or None for the recipe's default), got {value!r}"
                )
        rate = self.learning_rate
        if rate is not None and not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise InputError(
                f"learning_rate must be a finite number > 0 (or None for the recipe's default), got {rate!r}"
            )


@dataclass
class TrainResult:
    """A trained model, its figures and what an export needs.

    Attributes:
        model: the trained Keras model.
        figures: test figures (lower-case metric names, ``split``, ``epochs``,
            ``seconds_per_epoch``, ``seed``), printed as the final JSON line.
        history: Keras history (per-epoch lists).
        artifacts: what an export needs: ``RetrievalArtifacts`` or ``RankingArtifacts``
            (``tfrecs.export.artifacts``).
        record: the run's record (``tfrecs.recipes.run_dir.run_record``): data set, split,
            seed, the resolved model hyper-parameters and training settings, figures and
            package versions; written to ``run.json`` and into ``export_info.json``.
    """

    model: Any
    figures: Dict[str, Any]
    history: Dict[str, List[float]] = field(default_factory=dict)
    artifacts: Any = None
    record: Dict[str, Any] = field(default_factory=dict)


def _coerce(text: str) -> Any:
    if "," in text:  # a tuple hyper-parameter, e.g. hidden_units=256,128
        return tuple(_coerce(part.strip()) for part in text.split(",") if part.strip())
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    return text


def parse_overrides(pairs: Sequence[str]) -> Dict[str, Any]:
    """``["dim=64", "l2=1e-5", "norm=true", "hidden_units=256,128"]`` -> ``{"dim": 64, "l2": 1e-05,
    "norm": True, "hidden_units": (256, 128)}``.

    Raises:
        ValueError: an entry is not of the form ``key=value``.
    """
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects key=value, got {pair!r}")
        result[key.strip()] = _coerce(value.strip())
    return result


def apply_overrides(defaults: Any, overrides: Dict[str, Any], model: str) -> Any:
    """A copy of the dataclass ``defaults`` with ``overrides`` applied.

    Raises:
        ValueError: an override names no field; the message lists the valid ones.
    """
    names = {f.name for f in dataclasses.fields(defaults)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(f"unknown hyper-parameter(s) {unknown} for model {model!r}; valid: {sorted(names)}")
    return dataclasses.replace(defaults, **overrides)


# Constructor arguments that are data or wiring, never ``--set`` hyper-parameters.
NOT_SETTABLE = frozenset(
    {
        "spec",
        "features",
        "item_ids",
        "item_counts",
        "user_ids",
        "query_features",
        "candidate_features",
        "name",
        "trainable",
        "dtype",
    }
)


def model_parameters(model_cls: type) -> Dict[str, Any]:
    """``--set``-able hyper-parameters of a model class: constructor keyword -> default.

    Example::

        model_parameters(DeepFM)["hidden_units"]   # (400, 400, 400)
    """
    import inspect

    parameters = inspect.signature(model_cls.__init__).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.name != "self"
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        and p.default is not inspect.Parameter.empty
        and p.name not in NOT_SETTABLE
    }


def split_overrides(
    overrides: Dict[str, Any],
    model_cls: type,
    settings: Any,
    model: str,
    recipe_model_defaults: Optional[Dict[str, Any]] = None,
):
    """Splits ``--set`` overrides into model keywords and the recipe's training settings.

    Args:
        overrides: ``TrainConfig.hparams``.
        model_cls: the model class; its constructor keywords are the model hyper-parameters.
        settings: the recipe's training-settings dataclass instance (defaults).
        model: model name, for messages.
        recipe_model_defaults: model keywords the recipe sets where it departs from the
            paper default (``--set`` still overrides them).

    Returns:
        ``(model_kwargs, settings)``: keywords to pass to ``model_cls`` and a copy of
        ``settings`` with its overrides applied.

    Raises:
        ValueError: a key is neither a model keyword nor a training setting; the message
            lists both.

    Example::

        kwargs, settings = split_overrides({"dropout": 0.2, "patience": 5}, DeepFM, CtrSettings(), "deepfm")
    """
    model_keys = set(model_parameters(model_cls))
    setting_keys = {f.name for f in dataclasses.fields(settings)}
    unknown = sorted(set(overrides) - model_keys - setting_keys)
    if unknown:
        raise InputError(
            f"unknown hyper-parameter(s) {unknown} for model {model!r}; model keywords: {sorted(model_keys)}; "
            f"training settings: {sorted(setting_keys)}"
        )
    defaults = {
        **model_parameters(model_cls),
        **{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)},
    }
    checked = {key: typed_override(key, value, defaults[key], model) for key, value in overrides.items()}
    model_kwargs = dict(recipe_model_defaults or {})
    model_kwargs.update({key: value for key, value in checked.items() if key in model_keys})
    chosen = {key: value for key, value in checked.items() if key in setting_keys and key not in model_keys}
    return model_kwargs, dataclasses.replace(settings, **chosen)


# Value ranges of --set keys, by name (one rule for every model): (predicate, description).
_AT_LEAST_ONE = (lambda v: v >= 1, ">= 1")
_NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
_POSITIVE = (lambda v: v > 0, "> 0")
_FRACTION = (lambda v: 0 <= v < 1, "in [0, 1)")


def value_range(key: str):
    """The documented range of a ``--set`` key, or None when its name implies none.

    Counts and sizes (``*_dim``, ``*_units``, ``*_size``, ``num_*``, ``epochs``, ``max_len``,
    ``neighbours``, ``evaluate_every``) are >= 1; ``dropout*`` and ``*_probability`` lie in
    [0, 1); ``learning_rate`` and ``temperature`` are > 0; ``l2``, ``*_l2``, ``patience``,
    ``shrink`` are >= 0.
    """
    if key.startswith("dropout") or key.endswith("_dropout") or key.endswith("_probability"):
        return _FRACTION
    if key in ("learning_rate", "temperature") or key.endswith("_temperature"):
        return _POSITIVE
    if key in ("l2", "patience", "shrink") or key.endswith("_l2"):
        return _NON_NEGATIVE
    if (
        key.endswith(("_dim", "_units", "_size", "_sizes"))
        or key.startswith("num_")
        or key in ("epochs", "max_len", "neighbours", "evaluate_every", "units")
    ):
        return _AT_LEAST_ONE
    return None


def typed_override(key: str, value: Any, default: Any, model: str) -> Any:
    """``value`` checked against the type of the hyper-parameter's ``default`` and the key's range.

    Raises:
        InputError: names the key, the value and what is expected.

    Example::

        typed_override("embedding_dim", 64, 10, "deepfm")      # 64
        typed_override("embedding_dim", "abc", 10, "deepfm")   # InputError naming embedding_dim
    """

    def fail(expected: str):
        raise InputError(f"--set {key}={value!r} for model {model!r}: expected {expected} (default {default!r})")

    if default is None:
        return value
    if value is None:
        fail("a value (none is not allowed here)")
    if isinstance(default, bool):
        return value if isinstance(value, bool) else fail("true or false")
    if isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            fail("a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail("a finite number")
        value = float(value)
    elif isinstance(default, (tuple, list)):
        value = value if isinstance(value, tuple) else (value,)
        if default and all(isinstance(item, int) and not isinstance(item, bool) for item in default):
            if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
                fail("comma-separated whole numbers")
        elif default and all(isinstance(item, (int, float)) for item in default):
            if not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value):
                fail("comma-separated numbers")
    elif isinstance(default, str):
        value = value if isinstance(value, str) else str(value)
    limits = value_range(key)
    defaults = default if isinstance(default, (tuple, list)) else (default,)
    if limits is not None and all(isinstance(d, (int, float)) and limits[0](d) for d in defaults):
        check, described = limits
        items = value if isinstance(value, tuple) else (value,)
        if not all(isinstance(item, (int, float)) and check(item) for item in items):
            fail(f"{'every value ' if isinstance(value, tuple) else ''}{described}")
    return value


def docstring_arguments(obj: Any) -> Dict[str, str]:
    """``name -> first line of its description`` from a docstring's ``Args:`` / ``Attributes:`` sections.

    Entries naming several arguments (``a, b, c: ...``) give each the same description.

    Example::

        docstring_arguments(DeepFM)["dropout"]
    """
    import inspect
    import re

    text = inspect.getdoc(obj) or ""
    meanings: Dict[str, str] = {}
    in_section, current = False, []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Attributes:", "Arguments:"):
            in_section, current = True, []
            continue
        if in_section and stripped and not line.startswith("    "):
            in_section, current = False, []
        if not in_section or not stripped:
            continue
        match = re.match(r"^    ([\w, ]+?):\s*(.*)$", line)
        if match:
            current = [name.strip() for name in match.group(1).split(",")]
            for name in current:
                meanings.setdefault(name, match.group(2).strip())
        elif line.startswith("        ") and current:
            for name in current:
                meanings[name] = f"{meanings[name]} {stripped}".strip()
        else:  # an entry this parser does not name (``**kwargs``): its continuation is not ours
            current = []
    return meanings
