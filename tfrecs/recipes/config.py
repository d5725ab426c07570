"""What a training job is asked to do (``TrainConfig``) and what it hands back (``TrainResult``)."""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence


@dataclass
class TrainConfig:
    """Settings shared by every recipe; ``None`` means "the model's paper default".

    Args:
        model: registered model name, e.g. ``"two_tower"``.
        dataset: data set name, e.g. ``"ml-100k"``.
        epochs, batch_size, learning_rate: overrides of the recipe's defaults.
        seed: seed of the split, initialisation and sampling.
        strategy: ``auto``, ``one_device``, ``mirrored`` or ``multi_worker``.
        precision: ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.
        run_dir: where logs, checkpoints and backups go (None: no files).
        hparams: model hyper-parameter overrides by name (``--set dim=64``).
        data_dir, cache_dir: data source locations (see ``tfrecs.data.load_dataset``).
        verbose: Keras progress-bar verbosity.
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


@dataclass
class TrainResult:
    """A trained model, its figures and what an export needs.

    Attributes:
        model: the trained Keras model.
        figures: test figures (lower-case metric names, ``split``, ``epochs``,
            ``seconds_per_epoch``, ``seed``), printed as the final JSON line.
        history: Keras history (per-epoch lists).
        artifacts: recipe-specific objects for export (e.g. the FeatureSpec, the
            candidate data set, item titles).
    """

    model: Any
    figures: Dict[str, Any]
    history: Dict[str, List[float]] = field(default_factory=dict)
    artifacts: Dict[str, Any] = field(default_factory=dict)


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
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
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
        raise ValueError(f"unknown hyper-parameter(s) {unknown} for model {model!r}; valid: {sorted(names)}")
    return dataclasses.replace(defaults, **overrides)
