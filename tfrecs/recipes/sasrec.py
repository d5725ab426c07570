"""SASRec recipe: causal windows of the leave-one-out training part, ``loo-full`` evaluation.

``--set`` takes ``SASRec``'s keywords (``objective=ce|bce|gbce|sampled_softmax``, ``dim``,
``max_len``, ``num_negatives``, ...) and the training settings of ``SequentialSettings``
(``stride``, ``batch_size``, ``learning_rate``, ``epochs``, ``patience``, ``evaluate_every``).
Every training user's sequence is cut into windows of ``max_len + 1`` items, every real next
item a target. Early stopping on validation NDCG@10. Users with an empty history get the
popularity ranking.

Example::

    result = train(TrainConfig(model="sasrec", dataset="ml-100k", hparams={"objective": "ce"}))
    result.figures["ndcg@10"]
"""

from tfrecs.models.sasrec import SASRec
from tfrecs.pipelines.tfrecord_training import RunSource, sequence_batches
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.sequential_common import SequentialSettings, load_sequences, run
from tfrecs.recipes.skeleton import recipe_settings

# Where the recipe departs from the paper's ML-1M defaults (dim 50, 1 head, 200 positions).
MODEL_DEFAULTS = {"dim": 64, "num_heads": 2, "max_len": 50}


@register_recipe("sasrec", model=SASRec, settings=SequentialSettings, model_defaults=MODEL_DEFAULTS)
def train_sasrec(config: TrainConfig) -> TrainResult:
    """SASRec on ``loo-full``; the figures include ``objective``."""
    kwargs, settings = recipe_settings(config, SASRec, SequentialSettings(), MODEL_DEFAULTS)
    data = load_sequences(config)
    if config.tfrecords:  # causal windows of pipelines/window_sequences.py (checked against this run)
        source = RunSource.of(config)
        train_ds = sequence_batches(
            config.tfrecords, data, "sasrec", "causal", kwargs["max_len"], settings.batch_size, source
        )
    else:
        train_ds = data.causal_batches(kwargs["max_len"], settings.batch_size, config.seed, settings.stride)

    def build():
        return SASRec(data.item_ids, data.counts, **kwargs)

    return run(config, settings, data, build, train_ds, objective=kwargs.get("objective", "ce"))
