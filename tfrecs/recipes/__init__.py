"""Recipes: end-to-end training jobs by model name (data -> pipeline -> model -> fit -> evaluate).

A recipe is a function ``TrainConfig -> TrainResult`` registered under the model's
snake_case name; ``tfrecs train --model NAME`` and the benchmarks call it. Each model
family registers its recipes in its own module of this package.

Example::

    from tfrecs.recipes import TrainConfig, train
    result = train(TrainConfig(model="two_tower", dataset="ml-100k", epochs=5))
    result.figures["ndcg@10"]
"""

from tfrecs.recipes.config import TrainConfig, TrainResult, apply_overrides, parse_overrides  # noqa: F401
from tfrecs.recipes.registry import get_recipe, recipe_names, register_recipe, train  # noqa: F401
