"""PinSage recipe: random-walk neighbourhoods sampled in ``tf.data`` while the model trains.

Settings -> view (``tfrecs.pipelines.PinSageData``: the training graph, its walk sampler and
genre features) -> model (``PinSage.from_interactions``: frozen neighbourhood tables for
evaluation and serving) -> fit (in-batch softmax, hard negatives by curriculum) -> figures.
``--set`` reaches the ``PinSage`` keywords (``embedding_dim``, ``num_layers``,
``num_neighbors``, ``num_user_neighbors``, ``temperature``, ``logq_correction``) and
``PinSageSettings``. Export serves tables that the offline job (``PinSage.embed_items`` /
``embed_users``) fills, behind ScaNN or brute force, like LightGCN's.

Example::

    result = train(TrainConfig(model="pinsage", dataset="ml-100k"))
    result.figures["ndcg@10"]
"""

from dataclasses import dataclass
from typing import Optional

from tfrecs import training
from tfrecs.core.errors import InputError
from tfrecs.data.dataset import ITEM_ID, USER_ID
from tfrecs.models.pinsage import PinSage
from tfrecs.pipelines.pinsage_view import PinSageData
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.lightgcn import artifacts
from tfrecs.recipes.neumf import PROTOCOL, id_score_fn
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.retrieval_common import final_figures, validation_evaluator
from tfrecs.recipes.skeleton import fit_recipe, load_split, recipe_settings


@dataclass
class PinSageSettings:
    """PinSage training settings, chosen from a few ML-100K ``random-full`` runs (seed 2020):
    learning rate 5e-3 peaks on validation NDCG@10 around epoch 3-4 (test NDCG@10 0.285; 2e-3
    learns slower; batch 1024, 100 user neighbours or temperature 0.05 did worse; two hard
    negatives by curriculum gave the same figure, so they are off by default).

    Attributes:
        num_walks, walk_length: random walks per item node and their item -> user -> item
            hops, for the training batches' sampled neighbourhoods.
        user_walks: random walks per user for the training batches (a user's neighbourhood
            is a sample of ``user_walks x walk_length`` visits).
        table_walks: walks per node for the frozen neighbourhood tables (evaluation, export).
        num_hard_negatives: hard negatives per training row at the end of the curriculum (0: none).
        hard_negative_low, hard_negative_high: the window of walk-visit ranks (from the user,
            the user's own items left out) hard negatives are drawn from.
        curriculum_start: the (0-based) epoch of the first hard negative; one more per epoch.
        batch_size, learning_rate, epochs: Adam fit (``TrainConfig`` values win when given).
        patience: validation evaluations without a better NDCG@10 before stopping.
        evaluate_every: epochs between validation evaluations.
        max_positives: train on the first this many interactions only (quick runs).
    """

    num_walks: int = 16
    user_walks: int = 64
    walk_length: int = 2
    table_walks: int = 64
    num_hard_negatives: int = 0
    hard_negative_low: int = 20
    hard_negative_high: int = 200
    curriculum_start: int = 2
    batch_size: int = 512
    learning_rate: float = 5e-3
    epochs: int = 30
    patience: int = 3
    evaluate_every: int = 1
    max_positives: Optional[int] = None


@register_recipe("pinsage", model=PinSage, settings=PinSageSettings)
def train_pinsage(config: TrainConfig) -> TrainResult:
    """PinSage on the ``random-full`` protocol."""
    if config.tfrecords:
        raise InputError(
            "pinsage builds its sampled subgraphs in its own tf.data producer; --tfrecords is not supported for it"
        )
    model_kwargs, settings = recipe_settings(config, PinSage, PinSageSettings())
    num_neighbors = int(model_kwargs.get("num_neighbors", 10))
    data = PinSageData.from_split(
        load_split(config, "random"),
        num_walks=settings.num_walks,
        walk_length=settings.walk_length,
        num_neighbors=num_neighbors,
        seed=config.seed,
    )
    train = data.split.train
    features = data.item_features if data.item_features.shape[1] else None
    strategy = training.configure(strategy=config.strategy, precision=config.precision)
    with strategy.scope():
        model = PinSage.from_interactions(
            data.spec,
            train.interactions[USER_ID],
            train.interactions[ITEM_ID],
            item_features=features,
            feature_item_ids=data.item_ids,
            num_walks=settings.table_walks,
            walk_length=settings.walk_length,
            seed=config.seed,
            **model_kwargs,
        )
        model.compile(optimizer=training.make_optimizer("adam", settings.learning_rate))
    train_ds = data.batches(
        settings.batch_size,
        num_layers=model.num_layers,
        num_user_neighbors=model.num_user_neighbors,
        num_hard_negatives=settings.num_hard_negatives,
        hard_negative_ranks=(settings.hard_negative_low, settings.hard_negative_high),
        curriculum_start=settings.curriculum_start,
        user_walks=settings.user_walks,
        seed=config.seed,
        max_positives=settings.max_positives,
        sampling_probability=model.logq_correction,
    )
    fitted = fit_recipe(
        model, train_ds, config, settings, evaluate_fn=validation_evaluator(data.split, PROTOCOL, id_score_fn(data))
    )
    figures = final_figures(data.score_fn(model), data.split, PROTOCOL, config=config, **fitted.figures(config.seed))
    return TrainResult(model=model, figures=figures, history=fitted.history, artifacts=artifacts(data))
