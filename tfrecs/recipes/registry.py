"""Model name -> training recipe, shared by ``tfrecs train``, notebooks and benchmarks."""

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable, Dict, List, Optional, Tuple

from tfrecs.core.errors import InputError
from tfrecs.recipes.config import TrainConfig, TrainResult, docstring_arguments, model_parameters

Recipe = Callable[[TrainConfig], TrainResult]
_RECIPES: Dict[str, Recipe] = {}
_PARAMETERS: Dict[str, Tuple[type, Any, Dict[str, Any]]] = {}
_INFRASTRUCTURE = {"config", "registry", "retrieval_common", "run_dir", "skeleton"}


def register_recipe(
    name: str, model: Optional[type] = None, settings: Any = None, model_defaults: Optional[Dict[str, Any]] = None
) -> Callable[[Recipe], Recipe]:
    """Decorator registering ``fn(config) -> TrainResult`` as the recipe of model ``name``.

    Args:
        name: the model name (``tfrecs train --model name``).
        model, settings, model_defaults: the model class, the training-settings dataclass and
            the model keywords the recipe sets itself: what ``--set`` reaches
            (``tfrecs train --model name --list-params``).
    """

    def decorate(fn: Recipe) -> Recipe:
        if name in _RECIPES and _RECIPES[name] is not fn:
            raise ValueError(f"a recipe for {name!r} is already registered")
        _RECIPES[name] = fn
        if model is not None:
            _PARAMETERS[name] = (model, settings, dict(model_defaults or {}))
        return fn

    return decorate


def recipe_parameters(name: str) -> List[Tuple[str, Any, str, str]]:
    """Every ``--set`` key of model ``name``: ``(key, default, "model" | "training", meaning)``.

    Raises:
        KeyError: no recipe, or the recipe does not declare its parameters.
    """
    get_recipe(name)
    if name not in _PARAMETERS:
        raise KeyError(f"the recipe of {name!r} does not list its parameters")
    model, settings, model_defaults = _PARAMETERS[name]
    settings = settings() if isinstance(settings, type) else settings
    meanings = {**docstring_arguments(model), **docstring_arguments(type(settings))}
    rows = [
        (key, model_defaults.get(key, default), "model", meanings.get(key, ""))
        for key, default in model_parameters(model).items()
    ]
    rows += [
        (f.name, getattr(settings, f.name), "training", meanings.get(f.name, "")) for f in dataclasses.fields(settings)
    ]
    return rows


def _load() -> None:
    """Imports every recipe module of this package (each model family has its own file)."""
    import tfrecs.recipes as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _INFRASTRUCTURE:
            importlib.import_module(f"{package.__name__}.{module.name}")


def recipe_names() -> List[str]:
    """Models that ``tfrecs train`` can train."""
    _load()
    return sorted(_RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe of model ``name``.

    Raises:
        KeyError: no recipe for that name; lists the trainable models.
    """
    _load()
    if name not in _RECIPES:
        raise KeyError(
            f"no training recipe for model {name!r}; trainable models: {', '.join(sorted(_RECIPES)) or 'none yet'}"
        )
    return _RECIPES[name]


def declared_parameters(name: str) -> Optional[Tuple[type, Any, Dict[str, Any]]]:
    """``(model class, settings, model defaults)`` the recipe of ``name`` declared, or None."""
    get_recipe(name)
    return _PARAMETERS.get(name)


def train(config: TrainConfig) -> TrainResult:
    """Runs the recipe of ``config.model``; with ``config.run_dir`` saves the finished run there.

    With ``config.restore_from`` the recipe loads that run's trained model instead of fitting
    (``tfrecs.recipes.run_dir``), and the result carries that run's record.
    """
    from tfrecs.recipes import run_dir

    recipe = get_recipe(config.model)
    if config.restore_from:
        result = recipe(config)
        record = run_dir.load_record(config.restore_from)
        result.record = {**record, "figures": result.figures, "evaluated_from": config.restore_from}
        return result
    if run_dir.finished(config.run_dir):
        raise InputError(
            f"--run-dir {config.run_dir} already holds a finished run ({run_dir.RUN_FILE}); use it with "
            f"tfrecs evaluate / export --run-dir {config.run_dir}, or train into a new directory"
        )
    result = recipe(config)
    if config.run_dir:
        run_dir.save_run(config.run_dir, config, result)
    else:
        result.record = run_dir.run_record(config, result)
    return result
