"""Sequence windowing for sequential recommenders (SASRec, BERT4Rec), vectorised with ragged tensors.

Ids are ``tfrecs.data.sequence_ids.SequenceIds``, shared with the sequential models
(padding 0, item ``i`` -> ``i + 1``, mask ``num_items + 1``, OOV ``num_items + 2``).

``max_len`` is the model's sequence length: causal examples have ``inputs`` and
``targets`` of ``max_len`` ids cut from windows of ``max_len + 1`` items (``inputs =
s[:-1]``, ``targets = s[1:]``); Cloze examples have ``max_len`` ids. Windows are cut from
the end of each user's chronological sequence backwards, every ``stride`` items (default
``max_len``), until the start is covered. With the default stride every item but each
user's first is a causal target exactly once; a smaller stride repeats targets
(augmentation), a larger one leaves gaps. A target is active (``target_mask = 1``) only
when it has at least one real item before it in its window.

Cloze: ``cloze_positions`` draws the positions to hide (for a model that puts its own
``[mask]`` there, as ``tfrecs.models.BERT4Rec`` does); ``cloze_mask`` applies the same draws
to the ids. Use one or the other, so a sequence is masked once.

Leave-one-out: build training windows from ``split.train`` only, so no training target is
a validation or test item; ``holdout_examples`` gives the validation / test examples
(history -> held-out item). ``tfrecs.pipelines.SequenceData`` turns all of this into the
raw-id batches the sequential models read.

Example::

    split = make_split(load_dataset("ml-100k"), "loo")
    ids = SequenceIds(split.train.num_items)
    train = causal_windows(user_sequences(split.train), max_len=50)
    ds = tf.data.Dataset.from_tensor_slices(train).shuffle(10_000).batch(256)
    ds = add_causal_negatives(ds, UniformSampler(ids.num_items, exclude), num_negatives=1, seed=0)
"""

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import TIMESTAMP, RecDataset
from tfrecs.data.sequence_ids import ITEM_OFFSET, PADDING_ID, SequenceIds  # noqa: F401  (re-exported)
from tfrecs.data.splits import Split
from tfrecs.pipelines.negative_sampling import Sampler
from tfrecs.pipelines.transforms import batch_seeds, check_batch_keys, epoch_key


@dataclass
class UserSequences:
    """Each user's items in time order: ``users[r]`` interacted with ``items[r]``.

    Attributes:
        users: ``[R]`` dense user indices (users with at least one interaction).
        items: ``[R, None]`` ``tf.RaggedTensor`` of catalogue indices, oldest first.
        num_items: catalogue size.
    """

    users: np.ndarray
    items: tf.RaggedTensor
    num_items: int


def user_sequences(ds: RecDataset) -> UserSequences:
    """Per-user chronological item sequences (ties in time keep row order, as the LOO split).

    Example::

        seqs = user_sequences(split.train)
        seqs.items.row_lengths()  # history length per user
    """
    if len(ds) == 0:
        raise ValueError(f"{ds.name}: no interactions to build sequences from (empty input)")
    users = ds.user_indices()
    key = ds.interactions[TIMESTAMP] if TIMESTAMP in ds.interactions else np.zeros(len(ds), dtype=np.int64)
    order = np.lexsort((np.arange(len(ds)), key, users))
    sorted_users = users[order]
    unique_users, starts, lengths = np.unique(sorted_users, return_index=True, return_counts=True)
    items = tf.RaggedTensor.from_row_lengths(ds.item_indices()[order], lengths.astype(np.int64))
    return UserSequences(unique_users.astype(np.int64), items, ds.num_items)


def _check_max_len(max_len: int, stride: Optional[int]) -> int:
    if max_len is None or max_len < 2:
        raise ValueError(f"max_len must be >= 2 (a sequence model needs at least two positions), got {max_len}")
    stride = max_len if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    return stride


def sliding_windows(sequences: tf.RaggedTensor, length: int, stride: int, min_length: int = 1):
    """Windows of up to ``length`` items ending at ``n, n - stride, ...`` until the start is covered.

    Args:
        sequences: ``[R, None]`` ragged values.
        length: window length.
        stride: step between window ends.
        min_length: rows shorter than this give no window.

    Returns:
        ``(windows, rows)``: ``[W, None]`` ragged windows (oldest window of a row last) and
        ``[W]`` the row each came from.

    Example::

        sliding_windows(tf.ragged.constant([[1, 2, 3, 4, 5]]), length=3, stride=2)
        # -> [[3, 4, 5], [1, 2, 3], ], rows [0, 0]
    """
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be >= 1, got {length} and {stride}")
    n = sequences.row_lengths()
    extra = tf.maximum(n - length, 0)
    counts = tf.where(n >= max(min_length, 1), 1 + (extra + stride - 1) // stride, 0)
    rows = tf.repeat(tf.range(sequences.nrows()), counts)
    k = tf.ragged.range(counts).flat_values
    ends = tf.gather(n, rows) - k * stride
    starts = tf.maximum(ends - length, 0)
    offsets = tf.gather(sequences.row_starts(), rows)
    positions = tf.ragged.range(offsets + starts, offsets + ends)
    windows = tf.RaggedTensor.from_row_splits(
        tf.gather(sequences.flat_values, positions.flat_values), positions.row_splits
    )
    return windows, rows


def left_pad(windows: tf.RaggedTensor, length: int, padding: int = PADDING_ID) -> tf.Tensor:
    """``[W, length]`` dense windows, right-aligned, padded on the left (longer rows keep their end)."""
    windows = windows[:, -length:]
    row_lengths = windows.row_lengths()
    rows = windows.value_rowids()
    columns = (
        tf.range(tf.size(rows, out_type=tf.int64))
        - tf.gather(windows.row_starts(), rows)
        + tf.gather(length - row_lengths, rows)
    )
    dense = tf.fill(tf.stack([windows.nrows(), tf.constant(length, tf.int64)]), tf.cast(padding, windows.dtype))
    return tf.tensor_scatter_nd_update(dense, tf.stack([rows, columns], axis=1), windows.flat_values)


def causal_windows(sequences: UserSequences, max_len: int, stride: Optional[int] = None) -> Dict[str, np.ndarray]:
    """SASRec-style examples: ``inputs = s[:-1]``, ``targets = s[1:]`` of windows of ``max_len + 1``.

    Returns:
        ``{"user": [W], "inputs": [W, max_len], "targets": [W, max_len],
        "target_mask": [W, max_len] float32}``; ids follow ``SequenceIds`` (padding 0, items
        +1); ``target_mask`` is 1 where the target has a real item before it, and
        ``targets`` is padding wherever the mask is 0. Users with fewer than two items give
        no window.

    Raises:
        ValueError: ``max_len < 2`` or ``stride < 1``.

    Example::

        examples = causal_windows(user_sequences(split.train), max_len=50)
        examples["target_mask"].sum()  # 97,171 on ML-100K leave-one-out
    """
    stride = _check_max_len(max_len, stride)
    windows, rows = sliding_windows(sequences.items + ITEM_OFFSET, max_len + 1, stride, min_length=2)
    padded = left_pad(windows, max_len + 1)
    inputs, targets = padded[:, :-1], padded[:, 1:]
    mask = tf.logical_and(tf.not_equal(targets, PADDING_ID), tf.not_equal(inputs, PADDING_ID))
    targets = tf.where(mask, targets, tf.zeros_like(targets))  # a sequence's first item is no target
    return {
        "user": sequences.users[rows.numpy()],
        "inputs": inputs.numpy(),
        "targets": targets.numpy(),
        "target_mask": tf.cast(mask, tf.float32).numpy(),
    }


def cloze_windows(sequences: UserSequences, max_len: int, stride: Optional[int] = None) -> Dict[str, np.ndarray]:
    """BERT4Rec training windows of ``max_len`` ids (left-padded), before masking.

    Returns:
        ``{"user": [W], "inputs": [W, max_len]}``; mask them per batch with ``cloze_mask``.

    Example::

        ds = tf.data.Dataset.from_tensor_slices(cloze_windows(seqs, 200)).batch(256)
        ds = cloze_mask(ds, SequenceIds(num_items), mask_probability=0.2, seed=1)
    """
    stride = _check_max_len(max_len, stride)
    windows, rows = sliding_windows(sequences.items + ITEM_OFFSET, max_len, stride, min_length=1)
    return {"user": sequences.users[rows.numpy()], "inputs": left_pad(windows, max_len).numpy()}


def _cloze_choice(items: tf.Tensor, seed_pair: tf.Tensor, mask_probability: float, always_mask_last: bool) -> tf.Tensor:
    """``[B, L]`` bool: the positions of ``items`` the Cloze task hides (see ``cloze_positions``)."""
    real = tf.not_equal(items, PADDING_ID)
    draws = tf.random.stateless_uniform(tf.shape(items), seed_pair)
    masked = tf.logical_and(real, draws < mask_probability)
    last = tf.one_hot(tf.shape(items)[1] - 1, tf.shape(items)[1], on_value=True, off_value=False)[None, :]
    force_last = tf.logical_not(tf.reduce_any(masked, axis=1, keepdims=True))
    if always_mask_last:
        force_last = tf.ones_like(force_last)
    return tf.logical_or(masked, tf.logical_and(tf.logical_and(last, force_last), real))


def _map_cloze(
    dataset: tf.data.Dataset, mask_probability: float, always_mask_last: bool, seed: int, input_key: str, outputs
) -> tf.data.Dataset:
    if not 0.0 <= mask_probability <= 1.0:
        raise ValueError(f"mask_probability must be in [0, 1], got {mask_probability}")
    check_batch_keys(dataset, input_key, rank=2)

    def transform(batch, seed_pair):
        items = batch[input_key]
        out = dict(batch)
        out.update(outputs(items, _cloze_choice(items, seed_pair, mask_probability, always_mask_last)))
        return out

    return tf.data.Dataset.zip(dataset, batch_seeds(seed, key=epoch_key(dataset))).map(
        transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def cloze_positions(
    dataset: tf.data.Dataset,
    mask_probability: float = 0.2,
    always_mask_last: bool = False,
    seed: int = 0,
    input_key: str = "inputs",
) -> tf.data.Dataset:
    """Draws the Cloze positions of each batch (stateless, seeded per batch), leaving items as they are.

    Each real (non-padding) position is chosen with probability ``mask_probability``; a row
    left without any chosen position gets its last item chosen. ``always_mask_last=True``
    (BERT4Rec's fine-tuning variant) chooses the last item of every row in addition. A model
    that masks by itself (``tfrecs.models.BERT4Rec``) reads these positions, so the data is
    masked once; ``cloze_mask`` applies the same draws to the ids instead.

    Returns:
        Batches with ``"label_mask"`` added (1.0 at chosen positions).

    Raises:
        ValueError: ``mask_probability`` outside [0, 1], or no rank-2 ``input_key``.

    Example::

        ds = cloze_positions(ds, mask_probability=0.2, seed=3)   # + "label_mask"
    """
    return _map_cloze(
        dataset,
        mask_probability,
        always_mask_last,
        seed,
        input_key,
        lambda items, chosen: {"label_mask": tf.cast(chosen, tf.float32)},
    )


def cloze_mask(
    dataset: tf.data.Dataset,
    ids: SequenceIds,
    mask_probability: float = 0.2,
    always_mask_last: bool = False,
    seed: int = 0,
    input_key: str = "inputs",
) -> tf.data.Dataset:
    """Masks items of each batch for the Cloze task (the draws of ``cloze_positions``).

    Chosen positions of ``input_key`` are replaced by ``ids.mask``; with
    ``mask_probability=0`` and ``always_mask_last=True`` only the last item is masked.

    Returns:
        Batches with ``input_key`` masked, ``"labels"`` (the original id at masked positions,
        0 elsewhere) and ``"label_mask"`` (1.0 at masked positions).

    Example::

        ds = cloze_mask(ds, ids, mask_probability=0.2, always_mask_last=True, seed=3)
    """

    def outputs(items, chosen):
        return {
            input_key: tf.where(chosen, tf.cast(ids.mask, items.dtype), items),
            "labels": tf.where(chosen, items, tf.zeros_like(items)),
            "label_mask": tf.cast(chosen, tf.float32),
        }

    return _map_cloze(dataset, mask_probability, always_mask_last, seed, input_key, outputs)


def add_causal_negatives(
    dataset: tf.data.Dataset,
    sampler: Sampler,
    num_negatives: int = 1,
    seed: int = 0,
    user_key: str = "user",
    target_key: str = "targets",
    mask_key: str = "target_mask",
    output_key: str = "negatives",
) -> tf.data.Dataset:
    """Adds ``[B, max_len, K]`` negative ids per target position (0 where the target is inactive).

    The sampler works on catalogue indices (give it ``exclude=PositiveIndex.from_dataset(train)``
    to avoid the user's own training items, as SASRec does); ids are shifted by
    ``ITEM_OFFSET``.

    Example::

        ds = add_causal_negatives(ds, UniformSampler(num_items, exclude), num_negatives=1, seed=0)
    """
    check_batch_keys(dataset, user_key, target_key, mask_key)
    sampler.check_capacity(num_negatives)
    k = int(num_negatives)

    def transform(batch, seed_pair):
        targets = batch[target_key]
        shape = tf.shape(targets, out_type=tf.int64)
        users = tf.reshape(tf.repeat(tf.cast(batch[user_key], tf.int64)[:, None], shape[1], axis=1), [-1])
        negatives = tf.reshape(sampler.sample(users, k, seed_pair), tf.concat([shape, [k]], axis=0))
        active = tf.cast(batch[mask_key], tf.bool)[:, :, None]
        out = dict(batch)
        out[output_key] = tf.where(
            active, tf.cast(negatives + ITEM_OFFSET, targets.dtype), tf.zeros_like(targets)[:, :, None]
        )
        return out

    return tf.data.Dataset.zip(dataset, batch_seeds(seed, key=epoch_key(dataset))).map(
        transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def history_part(split: Split, part: str) -> RecDataset:
    """The interactions a held-out ``part`` is predicted from: train (``valid``) or train + valid (``test``).

    Raises:
        ValueError: ``part`` is not ``"valid"`` or ``"test"``.

    Example::

        user_histories(history_part(split, "test"), 50, align="end")   # test-time histories
    """
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    parts = [split.train] + ([split.valid] if part == "test" else [])
    columns = {name: np.concatenate([p.interactions[name] for p in parts]) for name in split.train.interactions}
    return split.train.with_interactions(columns)


def holdout_examples(split: Split, part: str, max_len: int, append_mask: bool = False) -> Dict[str, np.ndarray]:
    """Evaluation examples of a leave-one-out split: each user's history -> held-out item.

    The history of a validation item is the user's training sequence; the history of a test
    item is training + validation. Only users with a held-out item in ``part`` appear.

    Args:
        split: a ``make_split(ds, "loo")`` split.
        part: ``"valid"`` or ``"test"``.
        max_len: input length (the last ``max_len`` history ids, left-padded).
        append_mask: BERT4Rec style: the last ``max_len - 1`` history ids followed by the mask id.

    Returns:
        ``{"user": [U], "inputs": [U, max_len], "target": [U]}`` (ids: ``SequenceIds``).

    Example::

        test = holdout_examples(split, "test", max_len=50)
    """
    _check_max_len(max_len, None)
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    held_out = split.part(part)
    if len(held_out) == 0:
        raise ValueError(f"the {part} part of the split is empty")
    sequences = user_sequences(history_part(split, part))
    users = held_out.user_indices()
    rows = np.minimum(np.searchsorted(sequences.users, users), len(sequences.users) - 1)
    known = sequences.users[rows] == users  # a user without history gets an empty one
    starts = tf.gather(sequences.items.row_starts(), rows)
    lengths = tf.where(known, tf.gather(sequences.items.row_lengths(), rows), tf.zeros_like(starts))
    positions = tf.ragged.range(starts, starts + lengths)
    items = tf.RaggedTensor.from_row_splits(
        tf.gather(sequences.items.flat_values, positions.flat_values) + ITEM_OFFSET, positions.row_splits
    )
    ids = SequenceIds(split.train.num_items)
    if append_mask:
        inputs = left_pad(items, max_len - 1)
        inputs = tf.concat([inputs, tf.fill([tf.shape(inputs)[0], 1], tf.constant(ids.mask, inputs.dtype))], axis=1)
    else:
        inputs = left_pad(items, max_len)
    return {"user": users, "inputs": inputs.numpy(), "target": held_out.item_indices() + ITEM_OFFSET}
