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

from tfrecs import training
from tfrecs.data.dataset import ITEM_ID, USER_ID
from tfrecs.export.artifacts import RetrievalArtifacts
from tfrecs.models.lightgcn import LightGCN
from tfrecs.pipelines.id_view import IdData
from tfrecs.pipelines.tfrecord_training import RunSource, id_batches
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.neumf import PROTOCOL, id_score_fn, load_id_data
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.retrieval_common import final_figures, validation_evaluator
from tfrecs.recipes.skeleton import fit_recipe, recipe_settings


@dataclass
class LightGCNSettings:
    """LightGCN training settings: the paper's (BPR with one uniform negative, batch 2048, Adam)
    except the learning rate, 5e-3 instead of 1e-3 (on ML-100K it early-stops on validation
    NDCG@10 after ~75 epochs; 1e-3 needs several hundred). Model keywords (64 dims, 3 layers,
    L2 1e-4) are ``LightGCN``'s.

    Attributes:
        num_negatives, negative_sampler, popularity_alpha: BPR's sampled negatives per positive
            (``uniform`` or ``popularity`` with ``count ** alpha``).
        batch_size, learning_rate, epochs: Adam fit (``TrainConfig`` values win when given).
        patience: validation evaluations without a better NDCG@10 before stopping.
        evaluate_every: epochs between validation evaluations.
        max_positives: train on the first this many interactions only (quick runs).
    """

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


@register_recipe("lightgcn", model=LightGCN, settings=LightGCNSettings)
def train_lightgcn(config: TrainConfig) -> TrainResult:
    """LightGCN on the ``random-full`` protocol (``--set objective=softmax`` for the sampled softmax)."""
    model_kwargs, settings = recipe_settings(config, LightGCN, LightGCNSettings())
    data = load_id_data(config)
    train = data.split.train
    strategy = training.configure(strategy=config.strategy, precision=config.precision)
    with strategy.scope():
        model = LightGCN.from_interactions(
            data.spec, train.interactions[USER_ID], train.interactions[ITEM_ID], **model_kwargs
        )
        model.compile(optimizer=training.make_optimizer("adam", settings.learning_rate))
    batch_size = settings.batch_size
    if config.tfrecords:  # BPR triples of pipelines/sample_negatives.py --output-format pairwise
        output = "pairwise" if model.objective == "bpr" else model.objective
        train_ds = id_batches(config.tfrecords, data, "lightgcn", output, batch_size, RunSource.of(config))
    elif model.objective == "bpr":
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
    fitted = fit_recipe(
        model, train_ds, config, settings, evaluate_fn=validation_evaluator(data.split, PROTOCOL, id_score_fn(data))
    )
    figures = final_figures(
        data.score_fn(model),
        data.split,
        PROTOCOL,
        config=config,
        objective=model.objective,
        **fitted.figures(config.seed),
    )
    return TrainResult(model=model, figures=figures, history=fitted.history, artifacts=artifacts(data))
