"""Model name -> training recipe, shared by ``tfrecs train``, notebooks and benchmarks."""

import importlib
import pkgutil
from typing import Callable, Dict, List

from tfrecs.recipes.config import TrainConfig, TrainResult

Recipe = Callable[[TrainConfig], TrainResult]
_RECIPES: Dict[str, Recipe] = {}
_INFRASTRUCTURE = {"config", "registry", "retrieval_common"}


def register_recipe(name: str) -> Callable[[Recipe], Recipe]:
    """Decorator registering ``fn(config) -> TrainResult`` as the recipe of model ``name``."""

    def decorate(fn: Recipe) -> Recipe:
        if name in _RECIPES and _RECIPES[name] is not fn:
            raise ValueError(f"a recipe for {name!r} is already registered")
        _RECIPES[name] = fn
        return fn

    return decorate


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


def train(config: TrainConfig) -> TrainResult:
    """Runs the recipe of ``config.model``."""
    return get_recipe(config.model)(config)
