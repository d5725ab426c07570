"""LightGCN recipe: BPR on sampled (user, positive, negative) triples, or in-batch sampled softmax.

Settings -> view (``tfrecs.pipelines.IdData``) -> model (``LightGCN.from_interactions``) ->
fit -> figures. ``--set`` reaches the ``LightGCN`` keywords (``embedding_dim``,
``num_layers``, ``objective``, ``l2``, ``temperature``) and ``LightGCNSettings``.

Example::

    result = train(TrainConfig(model="lightgcn", dataset="ml-100k"))
    result.figures["ndcg@10"]
    query_tower, candidate_tower = result.model.export_towers()
"""

from dataclasses import dataclass
from typing import Optional

import tf_keras

from tfrecs import training
from tfrecs.data.dataset import ITEM_ID, USER_ID
from tfrecs.export.artifacts import RetrievalArtifacts
from tfrecs.models.lightgcn import LightGCN
from tfrecs.pipelines.id_view import IdData
from tfrecs.recipes.config import TrainConfig, TrainResult, split_overrides
from tfrecs.recipes.neumf import PROTOCOL, id_score_fn, load_id_data
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.retrieval_common import final_figures, history_seconds_per_epoch, validation_evaluator
from tfrecs.training.callbacks import EpochTimer, best_epoch


@dataclass
class LightGCNSettings:
    """LightGCN training settings: the paper's (BPR with one uniform negative, batch 2048, Adam)
    except the learning rate, 5e-3 instead of 1e-3 (on ML-100K it early-stops on validation
    NDCG@10 after ~75 epochs; 1e-3 needs several hundred). Model keywords (64 dims, 3 layers,
    L2 1e-4) are ``LightGCN``'s."""

    num_negatives: int = 1
    negative_sampler: str = "uniform"
    popularity_alpha: float = 0.75
    batch_size: int = 2048
    learning_rate: float = 5e-3
    epochs: int = 300
    patience: int = 10
    evaluate_every: int = 1
    max_positives: Optional[int] = None


def artifacts(data: IdData) -> RetrievalArtifacts:
    """Export inputs of an id-only retrieval model: ``user_id`` queries, every catalogue item."""
    return RetrievalArtifacts(
        feature_spec=data.spec,
        query_features=[USER_ID],
        candidates={ITEM_ID: data.item_ids},
        split=data.split,
        item_titles=data.item_titles,
        user_query_features={USER_ID: data.user_ids},
    )


@register_recipe("lightgcn")
def train_lightgcn(config: TrainConfig) -> TrainResult:
    """LightGCN on the ``random-full`` protocol (``--set objective=softmax`` for the sampled softmax)."""
    model_kwargs, settings = split_overrides(config.hparams, LightGCN, LightGCNSettings(), "lightgcn")
    tf_keras.utils.set_random_seed(config.seed)
    data = load_id_data(config)
    train = data.split.train
    strategy = training.configure(strategy=config.strategy, precision=config.precision)
    with strategy.scope():
        model = LightGCN.from_interactions(
            data.spec, train.interactions[USER_ID], train.interactions[ITEM_ID], **model_kwargs
        )
        model.compile(optimizer=training.make_optimizer("adam", config.learning_rate or settings.learning_rate))
    batch_size = config.batch_size or settings.batch_size
    if model.objective == "bpr":
        train_ds = data.batches(
            batch_size,
            settings.num_negatives,
            "pairwise",
            settings.negative_sampler,
            settings.popularity_alpha,
            seed=config.seed,
            max_positives=settings.max_positives,
        )
    else:  # in-batch negatives: batches of positives only
        train_ds = data.positive_batches(batch_size, seed=config.seed, max_positives=settings.max_positives)
    timer = EpochTimer()
    history = training.fit(
        model,
        train_ds,
        epochs=config.epochs or settings.epochs,
        run_dir=config.run_dir,
        monitor="val_ndcg@10",
        patience=settings.patience,
        evaluate_every=settings.evaluate_every,
        callbacks=[timer],
        verbose=config.verbose,
        evaluate_fn=validation_evaluator(data.split, PROTOCOL, id_score_fn(data)),
    )
    figures = final_figures(
        data.score_fn(model),
        data.split,
        PROTOCOL,
        epochs=len(history.history["loss"]),
        seconds_per_epoch=history_seconds_per_epoch(timer.seconds),
        seed=config.seed,
        best_epoch=best_epoch(history.history),
        objective=model.objective,
    )
    return TrainResult(model=model, figures=figures, history=history.history, artifacts=artifacts(data))
