"""Recipes of the closed-form baselines: ``ease`` and ``itemknn``, hyper-parameter searched on validation.

The model is fitted once on the training histories (one pass builds the Gram matrix); each
candidate value of the searched hyper-parameter (EASE's ``l2``, ItemKNN's ``neighbours``)
re-solves from it and is scored on the validation part; the best is kept and scored on test.
``--set l2=300`` (or ``neighbours=100``) fixes the value and skips the search.

Histories: on ``random-full`` the user's training items for validation and test (as the
other retrieval models see them); on ``loo-full`` the test input also holds the validation
item (the sequential papers' protocol).

Example::

    train(TrainConfig(model="ease", dataset="ml-100k")).figures["ndcg@10"]
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import RecDataset
from tfrecs.data.histories import user_histories
from tfrecs.evaluation.protocols import evaluate_protocol, protocol_split_name
from tfrecs.export.artifacts import history_artifacts
from tfrecs.models.item_item import EASE, ItemItemModel, ItemKNN
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.retrieval_common import evaluation_settings
from tfrecs.recipes.run_dir import restore_trained
from tfrecs.recipes.skeleton import load_split, recipe_settings

HISTORY = "history"


@dataclass
class ItemItemSettings:
    """Training settings of the closed-form recipes.

    Attributes:
        protocol: ``random-full`` (retrieval table) or ``loo-full`` (sequential table).
        grid: values of the searched hyper-parameter (EASE ``l2``, ItemKNN ``neighbours``).
        batch_size: users per batch of the Gram pass.
    """

    protocol: str = "random-full"
    grid: Tuple[float, ...] = ()
    batch_size: int = 512


SEARCH = {  # model -> (searched keyword, default grid)
    "ease": ("l2", (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)),
    "itemknn": ("neighbours", (10, 20, 50, 100, 200, 400)),
}


def _histories(split, stage: str, protocol: str) -> np.ndarray:
    parts: List[RecDataset] = [split.train]
    if stage == "test" and protocol.startswith("loo"):
        parts.append(split.valid)
    columns = {name: np.concatenate([p.interactions[name] for p in parts]) for name in split.train.interactions}
    dataset = split.train.with_interactions(columns)
    length = max(1, int(np.bincount(dataset.user_indices(), minlength=dataset.num_users).max()))
    return user_histories(dataset, length)


def _score_fn(model: ItemItemModel, histories: np.ndarray, batch_size: int):
    multi_hot = np.concatenate(
        [
            model({HISTORY: tf.constant(histories[i : i + batch_size])}).numpy()
            for i in range(0, len(histories), batch_size)
        ]
    )
    users = tf.constant(multi_hot)

    def score(user_indices):
        return tf.matmul(tf.gather(users, user_indices), model.item_matrix_weight)

    return score


def _search(model: ItemItemModel, split, settings, key: str, grid) -> Tuple[Any, Dict[str, float]]:
    """Fits the Gram matrix once, solves for every ``grid`` value of ``key``; best on validation NDCG@10."""
    valid_histories = _histories(split, "valid", settings.protocol)
    model.fit(tf.data.Dataset.from_tensor_slices({HISTORY: valid_histories}).batch(settings.batch_size))
    valid_scores = _score_fn(model, valid_histories, settings.batch_size)
    trials: Dict[str, float] = {}
    for value in grid:
        setattr(model, key, value)
        model.solve()
        trials[str(value)] = evaluate_protocol(valid_scores, split, settings.protocol, stage="valid", ks=(10,))[
            "ndcg@10"
        ]
    best = max(grid, key=lambda value: trials[str(value)])
    setattr(model, key, best)
    model.solve()
    return best, trials


def train_item_item(config: TrainConfig, model_cls: type) -> TrainResult:
    """Fits ``model_cls`` in closed form, searches its hyper-parameter on validation, reports test figures."""
    key, default_grid = SEARCH[config.model]
    model_kwargs, settings = recipe_settings(config, model_cls, ItemItemSettings())
    split = load_split(config, protocol_split_name(settings.protocol))
    grid = [model_kwargs[key]] if key in model_kwargs else list(settings.grid or default_grid)
    model = model_cls(np.asarray(split.train.item_index.ids), **{**model_kwargs, key: grid[0]})
    if config.restore_from:  # the solved matrix of a finished run, no search
        figures = restore_trained(model, config.restore_from)["figures"]
        best, trials = figures[key], figures["search"]["valid_ndcg@10"]
        setattr(model, key, best)
    else:
        best, trials = _search(model, split, settings, key, grid)
    evaluation = evaluation_settings(config, settings.protocol)
    scores = _score_fn(model, _histories(split, evaluation["stage"], evaluation["protocol"]), settings.batch_size)
    figures = {
        **evaluate_protocol(scores, split, **evaluation),
        key: best,
        "search": {"key": key, "valid_ndcg@10": trials},
        "seed": config.seed,
    }
    return TrainResult(
        model=model,
        figures=figures,
        history={key: [float(v) for v in grid]},
        artifacts=history_artifacts(split, model.item_ids, model.history_key),
    )


@register_recipe("ease", model=EASE, settings=ItemItemSettings)
def train_ease(config: TrainConfig) -> TrainResult:
    """EASE with ``l2`` searched on validation NDCG@10."""
    return train_item_item(config, EASE)


@register_recipe("itemknn", model=ItemKNN, settings=ItemItemSettings)
def train_itemknn(config: TrainConfig) -> TrainResult:
    """ItemKNN (cosine) with ``neighbours`` searched on validation NDCG@10."""
    return train_item_item(config, ItemKNN)
