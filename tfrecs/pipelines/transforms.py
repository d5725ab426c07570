"""Helpers shared by the ``tf.data`` transforms: per-batch stateless seeds and input checks.

Example::

    seeded = tf.data.Dataset.zip(batches, batch_seeds(7))   # (batch, seed [2] int64)
"""

from typing import Mapping

import tensorflow as tf


def batch_seeds(seed: int) -> tf.data.Dataset:
    """Endless ``[2]`` int64 seeds ``(seed, r_b)`` for stateless ops, one per batch.

    ``r`` is the stream of ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``:
    the same ``seed`` gives the same seeds in every run (and process), and every new
    iteration of the dataset (each Keras epoch) gets a fresh stream.
    """
    stream = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return stream.map(lambda r: tf.stack([tf.constant(seed, tf.int64), r]))


def check_batch_keys(dataset: tf.data.Dataset, *keys: str, rank: int = 1) -> None:
    """Raises unless ``dataset`` yields dicts holding ``keys``, the first of rank ``rank``.

    Raises:
        TypeError: the elements are not dicts.
        KeyError: a feature is missing (names it and lists the features there).
        ValueError: the first key's tensor is not batched as expected.
    """
    spec = dataset.element_spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"expected a dataset of dict batches (feature name -> tensor), got elements {spec}")
    for key in keys:
        if key not in spec:
            raise KeyError(f"feature {key!r} is missing from the batches (features: {sorted(spec)})")
    if spec[keys[0]].shape.rank != rank:
        raise ValueError(
            f"feature {keys[0]!r} must have rank {rank} with the batch first (batch the dataset "
            f"first), got shape {spec[keys[0]].shape}"
        )
