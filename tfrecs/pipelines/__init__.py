"""``tf.data`` building blocks: TFRecord I/O, negative sampling, hard negatives, sequence windowing.

Everything works on dense indices (``RecDataset.user_index`` / ``item_index``) and on
batches that are dicts of feature name -> tensor (the TFRS convention). Random draws are
stateless and seeded per batch, so runs reproduce. Formats, id conventions and examples:
``docs/pipelines.md``.

Names are imported lazily (TensorFlow loads on first use), so scripts answer ``--help``
at once.

Example::

    from tfrecs.pipelines import PopularitySampler, PositiveIndex, item_counts, sample_negatives
    sampler = PopularitySampler(item_counts(train), exclude=PositiveIndex.from_dataset(train))
    ds = sample_negatives(batches, sampler, num_negatives=4, output="pointwise", seed=0)
"""

import importlib

_EXPORTS = {
    "tfrecord_io": (
        "ColumnSchema",
        "ReadReport",
        "TFRecordIntegrityError",
        "TFRecordSchema",
        "check_shards",
        "load_schema",
        "read_tfrecords",
        "write_tfrecords",
        "SCHEMA_FILE",
    ),
    "negative_sampling": (
        "DEFAULT_ALPHA",
        "PROBABILITY_KEY",
        "PopularitySampler",
        "PositiveIndex",
        "Sampler",
        "SamplingError",
        "UniformSampler",
        "add_sampling_probability",
        "item_counts",
        "sample_negatives",
        "sampling_probabilities",
    ),
    "hard_negatives": ("HARD_NEGATIVE_KEY", "HardNegativeMiner", "HardNegativeRefresh", "add_hard_negatives"),
    "windowing": (
        "ITEM_OFFSET",
        "PADDING_ID",
        "SequenceIds",
        "UserSequences",
        "add_causal_negatives",
        "causal_windows",
        "cloze_mask",
        "cloze_positions",
        "cloze_windows",
        "history_part",
        "holdout_examples",
        "left_pad",
        "sliding_windows",
        "user_sequences",
    ),
    "sequence_view": ("SequenceData",),
    "transforms": ("EpochKey", "batch_seeds", "check_batch_keys", "epoch_key", "epoch_keys", "epoch_shuffled_batches"),
    "id_view": ("IdData", "factorized_score_fn"),
    "pinsage_view": ("PinSageData", "hard_negatives_at"),
    "two_tower_view": ("TwoTowerData",),
    "ctr_view": ("CTR_SPLIT", "CtrData", "check_binary_labels", "ctr_features", "load_ctr_data"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'tfrecs.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tfrecs.pipelines.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
