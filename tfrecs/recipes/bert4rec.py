"""BERT4Rec recipe: Cloze windows of the leave-one-out training part, ``loo-full`` evaluation.

``--set`` takes ``BERT4Rec``'s keywords (``dim``, ``max_len``, ``dropout``, ...) and the
training settings of ``BERT4RecSettings`` (``mask_probability`` and ``SequentialSettings``).
Windows of ``max_len`` items get fresh Cloze positions each batch with probability
``mask_probability`` (a row with none gets its last item); the model masks them. Early
stopping on validation NDCG@10; BERT4Rec needs long training (Petrov & Macdonald, 2022),
hence the large epoch budget and patience. Users with an empty history get the popularity
ranking.

Example::

    result = train(TrainConfig(model="bert4rec", dataset="ml-100k", epochs=400))
"""

from dataclasses import dataclass

from tfrecs.models.bert4rec import BERT4Rec
from tfrecs.pipelines.tfrecord_training import RunSource, sequence_batches
from tfrecs.recipes.config import TrainConfig, TrainResult
from tfrecs.recipes.registry import register_recipe
from tfrecs.recipes.sequential_common import SequentialSettings, load_sequences, run
from tfrecs.recipes.skeleton import recipe_settings

# Where the recipe departs from the paper's ML-1M defaults (200 positions).
MODEL_DEFAULTS = {"max_len": 50}


@dataclass
class BERT4RecSettings(SequentialSettings):
    """BERT4Rec training settings (paper: mask probability 0.2 on ML-1M)."""

    mask_probability: float = 0.2
    epochs: int = 400
    patience: int = 8
    evaluate_every: int = 4


@register_recipe("bert4rec", model=BERT4Rec, settings=BERT4RecSettings, model_defaults=MODEL_DEFAULTS)
def train_bert4rec(config: TrainConfig) -> TrainResult:
    """BERT4Rec on ``loo-full``."""
    kwargs, settings = recipe_settings(config, BERT4Rec, BERT4RecSettings(), MODEL_DEFAULTS)
    data = load_sequences(config)
    if config.tfrecords:  # Cloze windows of pipelines/window_sequences.py --mode cloze (checked against this run)
        source = RunSource.of(config)
        max_len, mask_probability = kwargs["max_len"], settings.mask_probability
        train_ds = sequence_batches(
            config.tfrecords, data, "bert4rec", "cloze", max_len, settings.batch_size, source, mask_probability
        )
    else:
        train_ds = data.cloze_batches(
            kwargs["max_len"], settings.batch_size, settings.mask_probability, config.seed, settings.stride
        )

    def build():
        return BERT4Rec(data.item_ids, data.counts, **kwargs)

    return run(config, settings, data, build, train_ds)
