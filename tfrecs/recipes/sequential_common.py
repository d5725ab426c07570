"""What the SASRec and BERT4Rec recipes share: training settings, scoring, the fit, export artifacts.

Leave-one-out by time (protocol ``loo-full``) on ``tfrecs.pipelines.SequenceData``: training
batches come from ``split.train`` only; validation histories are the training items, test
histories training + validation items, each model's last ``max_len`` of them. A user with no
history gets the popularity ranking (the models' built-in fallback, see
``tfrecs.models.sequential``). ``--set`` keys are the model's constructor keywords plus the
recipe's training settings (``tfrecs.recipes.config.split_overrides``).

Example::

    data = load_sequences(config)
    score_fn = sequential_score_fn(model, data.histories("test", model.max_len))
"""

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from tfrecs import training
from tfrecs.data.dataset import ITEM_ID
from tfrecs.export.artifacts import RetrievalArtifacts
from tfrecs.models.sequential import HISTORY, SequentialRetrievalModel
from tfrecs.pipelines.sequence_view import SequenceData
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.retrieval_common import (
    ScoreFn,
    evaluation_settings,
    factorized_score_fn,
    final_figures,
    validation_evaluator,
)
from tfrecs.recipes.skeleton import fit_recipe, load_split

PROTOCOL = "loo-full"


@dataclass
class SequentialSettings:
    """Training settings of the sequential recipes (model hyper-parameters are model keywords).

    Attributes:
        stride: items between training windows (``None``: the model's ``max_len``).
        batch_size, learning_rate, epochs: Adam fit (``TrainConfig`` values win when given).
        patience: validation evaluations without improvement before stopping.
        evaluate_every: epochs between validation NDCG@10 evaluations.
    """

    stride: Optional[int] = None
    batch_size: int = 128
    learning_rate: float = 1e-3
    epochs: int = 200
    patience: int = 5
    evaluate_every: int = 2


def load_sequences(config: TrainConfig) -> SequenceData:
    """``config.dataset`` split leave-one-out by time, seen as sequences; seeds Python, NumPy and TF."""
    return SequenceData.from_split(load_split(config, "loo"))


def sequential_score_fn(model: SequentialRetrievalModel, histories: np.ndarray, batch_size: int = 1024) -> ScoreFn:
    """Scores of every catalogue item (catalogue order) for each row of ``histories`` (raw ids)."""
    queries = tf.concat(
        [
            model({HISTORY: tf.constant(histories[start : start + batch_size])})
            for start in range(0, len(histories), batch_size)
        ],
        axis=0,
    )
    return factorized_score_fn(queries, model.catalogue()[1])


def sequential_artifacts(data: SequenceData, max_len: int) -> RetrievalArtifacts:
    """What an export needs: the served ``history`` / ``item_id`` spec and each user's test-time history."""
    items = data.split.train.items
    titles = np.asarray(items["title"]) if items is not None and "title" in items else None
    return RetrievalArtifacts(
        feature_spec=data.feature_spec(max_len),
        query_features=[HISTORY],
        candidates={ITEM_ID: data.item_ids},
        split=data.split,
        item_titles=titles,
        user_query_features={HISTORY: data.histories("test", max_len)},
    )


def run(
    config: TrainConfig,
    settings: SequentialSettings,
    data: SequenceData,
    build_model: Callable[[], SequentialRetrievalModel],
    train_ds: tf.data.Dataset,
    **extra,
) -> TrainResult:
    """Builds (under the strategy), fits (early stopping on ``val_ndcg@10``) and evaluates a sequential model."""
    strategy = training.configure(strategy=config.strategy, precision=config.precision)
    with strategy.scope():
        model = build_model()
        model.compile(optimizer=training.make_optimizer("adam", settings.learning_rate))
    valid_histories = data.histories("valid", model.max_len)
    evaluate = validation_evaluator(data.split, PROTOCOL, lambda m: sequential_score_fn(m, valid_histories))
    fitted = fit_recipe(model, train_ds, config, settings, evaluate_fn=evaluate)
    stage = evaluation_settings(config, PROTOCOL)["stage"]
    score_fn = sequential_score_fn(model, data.histories(stage, model.max_len))
    figures = final_figures(score_fn, data.split, PROTOCOL, config=config, **fitted.figures(config.seed), **extra)
    return TrainResult(
        model=model, figures=figures, history=fitted.history, artifacts=sequential_artifacts(data, model.max_len)
    )
