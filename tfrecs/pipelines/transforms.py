"""Helpers shared by the ``tf.data`` transforms: epoch-keyed shuffles, per-batch stateless seeds
and input checks.

A training run that is killed and resumed at epoch ``k`` must read epoch ``k`` in the order an
unbroken run reads it. ``Dataset.shuffle(..., reshuffle_each_iteration=True)`` cannot promise
that: its order depends on how often the dataset was iterated in this process. So the training
views shuffle with ``epoch_shuffled_batches``: the order of an epoch is a stateless permutation
(``tf.random.experimental.index_shuffle``) of ``(seed, epoch)``, and the epoch comes from an
``EpochKey`` that ``tfrecs.training.fit`` pins (callback ``EpochSeed``) to the epoch Keras is
in, resumed runs included. The per-batch seeds of negative sampling and Cloze masking
(``batch_seeds``) follow the same key: ``(seed, epoch, batch)``.

Outside ``tfrecs.training.fit`` (a plain ``model.fit``) nothing pins the key and each new
iteration of the dataset counts as the next epoch, so every epoch still gets a new order.

Example::

    batches = epoch_shuffled_batches({"user_id": users, "item_id": items}, 256, seed=7)
    seeded = tf.data.Dataset.zip(batches, batch_seeds(7, key=epoch_key(batches)))  # (batch, seed [2])
"""

from typing import List, Mapping, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

_KEY_ATTRIBUTE = "_tfrecs_epoch_key"


def _int64_variable(value: int, name: str) -> tf.Variable:
    with tf.init_scope(), tf.device("/cpu:0"):
        return tf.Variable(tf.constant(value, tf.int64), trainable=False, name=name)


class EpochKey:
    """The epoch an epoch-keyed dataset orders (and seeds) its next iteration by.

    ``pin(epoch)`` fixes it (``tfrecs.training.fit`` does so through ``EpochSeed`` before
    each epoch); ``release()`` returns to counting: each new iteration of each dataset
    reading the key is the next epoch (0, 1, 2, ...), which is what a plain ``model.fit``
    sees. The value is read once, when an iteration reads its first element.

    Example::

        key = EpochKey()
        batches = epoch_shuffled_batches(columns, 256, seed=1, key=key)
        key.pin(3)
        list(batches)   # epoch 3's order, whatever ran before
    """

    def __init__(self):
        self._pinned = _int64_variable(-1, "tfrecs_pinned_epoch")

    def pin(self, epoch: int) -> None:
        """Every iteration from now on reads epoch ``epoch`` (0-based)."""
        if int(epoch) < 0:
            raise ValueError(f"epoch={epoch} must be >= 0")
        self._pinned.assign(int(epoch))

    def release(self) -> None:
        """Iterations count their own epochs again."""
        self._pinned.assign(-1)

    @property
    def pinned(self) -> Optional[int]:
        """The pinned epoch, or None when iterations count."""
        value = int(self._pinned.numpy())
        return None if value < 0 else value

    def epochs(self) -> tf.data.Dataset:
        """A one-element dataset: the epoch of the iteration that reads it (int64 scalar).

        Each call has its own counter (unpinned, a dataset counts its own iterations).
        """
        counter = _int64_variable(0, "tfrecs_epoch_counter")
        pinned = self._pinned

        def read(_):
            value = pinned.read_value()
            return tf.cond(value >= 0, lambda: value, lambda: counter.assign_add(1) - 1)

        return tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(read)


def epoch_keys(dataset) -> List[EpochKey]:
    """The ``EpochKey`` objects of every epoch-keyed dataset ``dataset`` is built from (none: [])."""
    found, seen, pending = [], set(), [dataset]
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        key = getattr(node, _KEY_ATTRIBUTE, None)
        if isinstance(key, EpochKey) and all(key is not k for k in found):
            found.append(key)
        inputs = getattr(node, "_inputs", None)
        try:
            pending.extend(inputs() if callable(inputs) else [])
        except (TypeError, ValueError, NotImplementedError):
            continue
    return found


def epoch_key(dataset) -> Optional[EpochKey]:
    """The first ``EpochKey`` ``dataset`` is built from, or None (see ``epoch_keys``)."""
    keys = epoch_keys(dataset)
    return keys[0] if keys else None


def epoch_shuffled_batches(
    columns: Mapping[str, np.ndarray],
    batch_size: int,
    seed: int,
    key: Optional[EpochKey] = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches (dicts of column -> rows) of ``columns`` in an order that depends only on ``(seed, epoch)``.

    Each epoch is the stateless permutation ``index_shuffle(i, [seed, epoch], n - 1)`` of the
    row positions, read one batch of positions at a time with one gather per column; the epoch
    comes from ``key`` (a new ``EpochKey`` by default, found by ``epoch_key(dataset)`` and
    pinned by ``tfrecs.training.fit``). So a run resumed at epoch ``k`` reads epoch ``k``'s
    order, as an unbroken run does. The cardinality (number of batches) is known.

    Args:
        columns: name -> array with the same first dimension (rows).
        batch_size: rows per batch (the last one smaller unless ``drop_remainder``).
        seed: the shuffle's seed.
        key: the epoch source (share one between datasets that must agree).
        drop_remainder: drop a last partial batch.

    Raises:
        ValueError: no columns, columns of different lengths, or ``batch_size < 1``.

    Example::

        ds = epoch_shuffled_batches({"user_id": users, "item_id": items}, 1024, seed=2020)
    """
    if not columns:
        raise ValueError("epoch_shuffled_batches needs at least one column")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"columns differ in length: {lengths}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    size, batch_size = next(iter(lengths.values())), int(batch_size)
    key = key if key is not None else EpochKey()
    tensors = {name: tf.constant(np.asarray(values)) for name, values in columns.items()}
    base = tf.constant(int(seed), tf.int64)
    last = tf.constant(max(size - 1, 0), tf.int64)

    def one_epoch(epoch):
        order_seed = tf.stack([base, epoch])

        def gather(positions):
            rows = tf.random.experimental.index_shuffle(positions, order_seed, last)
            return {name: tf.gather(values, rows) for name, values in tensors.items()}

        positions = tf.data.Dataset.range(size).batch(batch_size, drop_remainder=drop_remainder)
        return positions.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    batches = size // batch_size if drop_remainder else -(-size // batch_size)
    dataset = key.epochs().flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(batches))
    setattr(dataset, _KEY_ATTRIBUTE, key)
    return dataset


def batch_seeds(seed: int, key: Optional[EpochKey] = None) -> tf.data.Dataset:
    """Endless ``[2]`` int64 seeds for stateless ops, one per batch.

    Without ``key``: ``(seed, r_b)`` with ``r`` the stream of ``tf.data.Dataset.random(seed,
    rerandomize_each_iteration=True)``: the same ``seed`` gives the same seeds in every run
    (and process), and every new iteration of the dataset (each Keras epoch) gets a fresh
    stream. With an ``EpochKey`` (``epoch_key(batches)`` of epoch-keyed batches): the seed
    of batch ``b`` of epoch ``e`` is ``stateless_fold_in([seed, e], b)``, a function of
    ``(seed, epoch, batch)`` only, so a resumed run draws what an unbroken one draws.
    """
    if key is None:
        stream = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        return stream.map(lambda r: tf.stack([tf.constant(seed, tf.int64), r]))
    base = tf.constant(int(seed), tf.int64)

    def one_epoch(epoch):
        start = tf.stack([base, epoch])
        return tf.data.Dataset.range(tf.int64.max).map(lambda b: tf.random.experimental.stateless_fold_in(start, b))

    return key.epochs().flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))


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


def feature_names(features: Union[None, str, Sequence[str]]) -> Optional[List[str]]:
    """``"a,b"`` / ``("a", "b")`` -> ``["a", "b"]``; None stays None (the views' ``features=`` arguments).

    Example::

        feature_names("user_id, item_id")   # ["user_id", "item_id"]
    """
    if features is None:
        return None
    if isinstance(features, str):
        return [name.strip() for name in features.split(",") if name.strip()]
    return [str(name) for name in features]
