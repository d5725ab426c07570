"""SASRec recipe: causal windows of the leave-one-out training part, ``loo-full`` evaluation.

``--set objective=ce|bce|gbce|sampled_softmax`` picks the training objective. Every training
user's sequence is cut into windows of ``max_len + 1`` items (``causal_windows``, stride
``stride``); every real next item is a target. Early stopping on validation NDCG@10.
Users with an empty history get the popularity ranking.

Example::

    result = train(TrainConfig(model="sasrec", dataset="ml-100k", hparams={"objective": "ce"}))
    result.figures["ndcg@10"]
"""
from dataclasses import dataclass
from typing import Optional

import tensorflow as tf

from tfrecs.models.sasrec import SASRec
from tfrecs.models.sequential import HISTORY
from tfrecs.pipelines.windowing import causal_windows, user_sequences
from tfrecs.recipes.config import TrainConfig, TrainResult, apply_overrides
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.sequential_common import SequenceData, SequentialHparams, run, seeded


@dataclass
class SASRecHparams(SequentialHparams):
    """SASRec hyper-parameters (paper: dim 50, 2 blocks, 1 head, dropout 0.2, lr 1e-3; here dim 64, 2 heads)."""

    objective: str = "ce"
    num_negatives: int = 128
    gbce_t: float = 0.75
    temperature: Optional[float] = None
    tie_output: bool = True


def causal_batches(data: SequenceData, max_len: int, batch_size: int, seed: int,
                   stride: Optional[int] = None) -> tf.data.Dataset:
    """Shuffled batches of raw ``history`` / ``targets`` windows of the training part."""
    windows = causal_windows(user_sequences(data.split.train), max_len, stride)
    ds = tf.data.Dataset.from_tensor_slices({"inputs": windows["inputs"], "targets": windows["targets"]})
    ds = ds.shuffle(len(windows["inputs"]), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return data.raw_batches(ds, {"inputs": HISTORY, "targets": "targets"}).prefetch(2)


@register_recipe("sasrec")
def train_sasrec(config: TrainConfig) -> TrainResult:
    """SASRec on ``loo-full``; the figures include ``objective``."""
    hp = apply_overrides(SASRecHparams(), config.hparams, "sasrec")
    seeded(config)
    data = SequenceData.load(config)
    train_ds = causal_batches(data, hp.max_len, config.batch_size or hp.batch_size, config.seed, hp.stride)

    def build():
        return SASRec(data.item_ids, data.counts, objective=hp.objective, num_negatives=hp.num_negatives,
                      gbce_t=hp.gbce_t, temperature=hp.temperature, tie_output=hp.tie_output, **hp.encoder())

    return run(config, hp, data, build, train_ds, objective=hp.objective)
