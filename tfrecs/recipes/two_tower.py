"""Two-Tower recipe: features from the training split, in-batch softmax with logQ, early stopping.

Settings -> view (``tfrecs.pipelines.TwoTowerData``) -> model (``TwoTower``) -> fit ->
figures. ``--set key=value`` reaches the ``TwoTower`` keywords (``temperature``,
``query_units``, ...) and the training settings of ``TwoTowerSettings`` (``history_length``,
``batch_size``, ``query_features``, ``candidate_features``, ...).

Example::

    result = train(TrainConfig(model="two_tower", dataset="ml-100k", epochs=5,
                               hparams={"temperature": 0.1, "history_length": 20}))
"""

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import tensorflow as tf

from tfrecs import training
from tfrecs.export.artifacts import RetrievalArtifacts
from tfrecs.models.two_tower import TwoTower
from tfrecs.pipelines.two_tower_view import TwoTowerData
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.retrieval_common import final_figures, validation_evaluator
from tfrecs.recipes.skeleton import fit_recipe, load_split, recipe_settings

PROTOCOL = "random-full"


@dataclass
class TwoTowerSettings:
    """Training settings of the Two-Tower recipe (model keywords are ``TwoTower``'s).

    Attributes:
        history_length: most recent training items in a user's ``history`` feature.
        learning_rate, batch_size, epochs: Adam and ``fit`` settings (``TrainConfig`` overrides them).
        patience: early-stopping patience on validation NDCG@10.
        query_features: the query tower's features, e.g. ``user_id,history`` (None:
            ``user_id``, the user table's columns and ``history``; a name the data lacks
            is an error naming it).
        candidate_features: the candidate tower's features, e.g. ``item_id,genres`` (None:
            ``item_id`` and the item table's columns).
    """

    history_length: int = 50
    learning_rate: float = 1e-3
    batch_size: int = 512
    epochs: int = 40
    patience: int = 3
    query_features: Optional[Tuple[str, ...]] = None
    candidate_features: Optional[Tuple[str, ...]] = None


def build_model(
    data: TwoTowerData, learning_rate: float, strategy: Optional[tf.distribute.Strategy] = None, **model_kwargs: Any
) -> TwoTower:
    """A compiled ``TwoTower`` for ``data`` (built under ``strategy``'s scope).

    Example::

        model = build_model(data, 1e-3, temperature=0.1, embedding_dim=32)
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = TwoTower(data.spec, data.query_features, data.candidate_features, **model_kwargs)
        model.compile(optimizer=training.make_optimizer("adam", learning_rate=learning_rate))
    return model


def artifacts(data: TwoTowerData) -> RetrievalArtifacts:
    """What an export needs: spec, query features (and every user's rows), candidates, titles, split."""
    return RetrievalArtifacts(
        feature_spec=data.spec,
        query_features=list(data.query_features),
        candidates=dict(data.candidates),
        split=data.split,
        item_titles=data.item_titles,
        user_query_features=data.user_query_features,
    )


@register_recipe("two_tower", model=TwoTower, settings=TwoTowerSettings)
def train_two_tower(config: TrainConfig) -> TrainResult:
    """Trains Two-Tower on ``config.dataset`` (random 80/10/10 split), reports ``random-full`` test.

    Early stopping watches full-ranking ``val_ndcg@10`` and restores the best epoch.

    Returns:
        ``TrainResult`` with ``RetrievalArtifacts`` (``user_query_features`` included, so
        ``tfrecs export --show-user`` works).

    Example::

        result = train(TrainConfig(model="two_tower", dataset="ml-100k", epochs=5))
    """
    model_kwargs, settings = recipe_settings(config, TwoTower, TwoTowerSettings())
    strategy = training.configure(strategy=config.strategy, precision=config.precision)
    split = load_split(config, "random")
    data = TwoTowerData.from_split(
        split,
        settings.history_length,
        query_features=settings.query_features,
        candidate_features=settings.candidate_features,
    )
    model = build_model(data, settings.learning_rate, strategy, **model_kwargs)
    fitted = fit_recipe(
        model,
        data.training_dataset(settings.batch_size, seed=config.seed),
        config,
        settings,
        evaluate_fn=validation_evaluator(split, PROTOCOL, data.score_fn),
    )
    figures = final_figures(
        data.score_fn(model),
        split,
        PROTOCOL,
        ks=(10, 20),
        config=config,
        model="two_tower",
        dataset=config.dataset,
        **fitted.figures(config.seed),
    )
    return TrainResult(model=model, figures=figures, history=fitted.history, artifacts=artifacts(data))
