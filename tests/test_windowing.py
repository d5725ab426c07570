"""Sequence windowing: exact windows, targets and masks on hand-written sequences, Cloze
masking, per-position negatives, and the leave-one-out holdout kept out of training."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.data import RecDataset, make_split
from tfrecs.pipelines import (
    PositiveIndex,
    SequenceIds,
    UniformSampler,
    add_causal_negatives,
    causal_windows,
    cloze_mask,
    cloze_positions,
    cloze_windows,
    history_part,
    holdout_examples,
    left_pad,
    sliding_windows,
    user_sequences,
)


def _toy():
    # user "a": items 0..6 given out of time order; user "b": items 3, 4; user "c": item 9 only.
    return RecDataset(
        "toy",
        {
            "user_id": np.array(["a", "b", "a", "a", "a", "b", "a", "a", "a", "c"]),
            "item_id": np.array([2, 3, 0, 1, 6, 4, 3, 5, 4, 9]),
            "timestamp": np.array([30, 1, 10, 20, 70, 2, 40, 60, 50, 5]),
        },
        users={"user_id": np.array(["a", "b", "c"])},
        items={"item_id": np.arange(10)},
    )


def test_sequence_ids_reserve_padding_and_mask():
    ids = SequenceIds(10)
    assert (ids.padding, ids.offset, ids.mask, ids.oov, ids.vocabulary_size) == (0, 1, 11, 12, 13)
    np.testing.assert_array_equal(ids.decode(ids.encode(np.arange(10))), np.arange(10))


def test_user_sequences_are_chronological():
    sequences = user_sequences(_toy())
    np.testing.assert_array_equal(sequences.users, [0, 1, 2])
    assert sequences.items.to_list() == [[0, 1, 2, 3, 4, 5, 6], [3, 4], [9]]


def test_sliding_windows_and_left_padding_by_hand():
    windows, rows = sliding_windows(tf.ragged.constant([[1, 2, 3, 4, 5], [7], []], tf.int64), length=3, stride=2)
    assert windows.to_list() == [[3, 4, 5], [1, 2, 3], [7]]
    np.testing.assert_array_equal(rows, [0, 0, 1])
    np.testing.assert_array_equal(left_pad(windows, 4), [[0, 3, 4, 5], [0, 1, 2, 3], [0, 0, 0, 7]])
    np.testing.assert_array_equal(left_pad(windows, 2), [[4, 5], [2, 3], [0, 7]])


def test_causal_windows_inputs_targets_and_masks_by_hand():
    examples = causal_windows(user_sequences(_toy()), max_len=3)
    # ids are items + 1. a: 1..7 -> windows [4,5,6,7] and [1,2,3,4]; b: [4,5]; c (one item): none
    np.testing.assert_array_equal(examples["user"], [0, 0, 1])
    np.testing.assert_array_equal(examples["inputs"], [[4, 5, 6], [1, 2, 3], [0, 0, 4]])
    np.testing.assert_array_equal(examples["targets"], [[5, 6, 7], [2, 3, 4], [0, 0, 5]])
    np.testing.assert_array_equal(examples["target_mask"], [[1, 1, 1], [1, 1, 1], [0, 0, 1]])


def test_overlapping_windows_with_a_smaller_stride():
    examples = causal_windows(user_sequences(_toy()), max_len=3, stride=2)
    np.testing.assert_array_equal(examples["inputs"], [[4, 5, 6], [2, 3, 4], [0, 1, 2], [0, 0, 4]])
    np.testing.assert_array_equal(examples["targets"], [[5, 6, 7], [3, 4, 5], [0, 2, 3], [0, 0, 5]])
    np.testing.assert_array_equal(examples["target_mask"], [[1, 1, 1], [1, 1, 1], [0, 1, 1], [0, 0, 1]])


def test_cloze_windows_by_hand():
    examples = cloze_windows(user_sequences(_toy()), max_len=3)
    np.testing.assert_array_equal(examples["user"], [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(examples["inputs"], [[5, 6, 7], [2, 3, 4], [0, 0, 1], [0, 4, 5], [0, 0, 10]])


def _batch(inputs):
    return tf.data.Dataset.from_tensor_slices({"inputs": np.asarray(inputs, np.int64)}).batch(len(inputs))


def test_cloze_mask_replaces_items_by_the_mask_id_and_labels_them():
    ids = SequenceIds(10)
    inputs = [[0, 0, 3, 4, 5], [1, 2, 3, 4, 5], [0, 0, 0, 0, 7]]
    only_last = next(iter(cloze_mask(_batch(inputs), ids, mask_probability=0.0, always_mask_last=True)))
    np.testing.assert_array_equal(only_last["inputs"], [[0, 0, 3, 4, 11], [1, 2, 3, 4, 11], [0, 0, 0, 0, 11]])
    np.testing.assert_array_equal(only_last["labels"], [[0, 0, 0, 0, 5], [0, 0, 0, 0, 5], [0, 0, 0, 0, 7]])
    np.testing.assert_array_equal(only_last["label_mask"], [[0, 0, 0, 0, 1]] * 3)
    everything = next(iter(cloze_mask(_batch(inputs), ids, mask_probability=1.0)))
    np.testing.assert_array_equal(everything["inputs"], np.where(np.array(inputs) > 0, 11, 0))
    np.testing.assert_array_equal(everything["labels"], inputs)


def test_cloze_mask_rate_padding_and_seeds():
    ids = SequenceIds(100)
    rng = np.random.default_rng(0)
    inputs = rng.integers(1, 101, size=(2000, 20))
    inputs[:, :5] = 0
    first = next(iter(cloze_mask(_batch(inputs), ids, mask_probability=0.2, seed=4)))
    again = next(iter(cloze_mask(_batch(inputs), ids, mask_probability=0.2, seed=4)))
    np.testing.assert_array_equal(first["inputs"], again["inputs"])
    masked = first["label_mask"].numpy()
    assert masked[:, :5].sum() == 0
    assert abs(masked[:, 5:].mean() - 0.2) < 0.01
    assert (masked.sum(axis=1) >= 1).all()
    np.testing.assert_array_equal(np.where(masked > 0, ids.mask, inputs), first["inputs"])


def test_causal_negatives_per_position_avoid_the_users_items():
    ds = _toy()
    examples = causal_windows(user_sequences(ds), max_len=3)
    index = PositiveIndex.from_dataset(ds)
    batches = tf.data.Dataset.from_tensor_slices(examples).batch(3)
    out = next(
        iter(add_causal_negatives(batches, UniformSampler(ds.num_items, exclude=index), num_negatives=2, seed=1))
    )
    negatives = out["negatives"].numpy()
    assert negatives.shape == (3, 3, 2)
    active = examples["target_mask"] > 0
    assert (negatives[~active] == 0).all() and (negatives[active] > 0).all()
    for row, user in enumerate(examples["user"]):
        own = index.user_items(user) + 1
        assert not np.isin(negatives[row][active[row]], own).any()


def test_bad_arguments_are_clear_errors():
    sequences = user_sequences(_toy())
    for max_len in (1, 0):
        with pytest.raises(ValueError, match="max_len must be >= 2"):
            causal_windows(sequences, max_len)
    with pytest.raises(ValueError, match="max_len must be >= 2"):
        cloze_windows(sequences, 1)
    with pytest.raises(ValueError, match="stride"):
        causal_windows(sequences, 3, stride=0)
    with pytest.raises(ValueError, match="empty input"):
        user_sequences(_toy().select(np.zeros(10, bool)))
    with pytest.raises(ValueError, match="mask_probability"):
        cloze_mask(_batch([[1, 2]]), SequenceIds(3), mask_probability=1.5)


def test_ml100k_leave_one_out_windows_keep_the_holdout_out_of_training(ml100k):
    split = make_split(ml100k, "loo")
    sequences = user_sequences(split.train)
    for max_len in (50, 800):
        examples = causal_windows(sequences, max_len=max_len)
        assert examples["target_mask"].sum() == 97171
    targets = np.where(examples["target_mask"] > 0, examples["targets"] - 1, -1)  # catalogue indices
    for part in ("valid", "test"):
        held_users, held_items = split.part(part).user_indices(), split.part(part).item_indices()
        held = dict(zip(held_users, held_items))
        per_window = np.array([held.get(u, -2) for u in examples["user"]])
        assert not (targets == per_window[:, None]).any(), part
    test = holdout_examples(split, "test", max_len=50)
    valid = holdout_examples(split, "valid", max_len=50)
    assert len(test["user"]) == 943 and len(valid["user"]) == 943
    valid_item = dict(zip(valid["user"], valid["target"]))
    assert all(row[-1] == valid_item[user] for user, row in zip(test["user"], test["inputs"]))
    cloze_test = holdout_examples(split, "test", max_len=50, append_mask=True)
    assert (cloze_test["inputs"][:, -1] == SequenceIds(ml100k.num_items).mask).all()
    np.testing.assert_array_equal(cloze_test["inputs"][:, :-1], test["inputs"][:, 1:])


def test_cloze_positions_are_cloze_masks_draws_without_touching_the_items():
    ids = SequenceIds(100)
    inputs = np.random.default_rng(1).integers(1, 101, size=(64, 12))
    inputs[:, :3] = 0
    masked = next(iter(cloze_mask(_batch(inputs), ids, mask_probability=0.3, seed=7)))
    chosen = next(iter(cloze_positions(_batch(inputs), mask_probability=0.3, seed=7)))
    np.testing.assert_array_equal(chosen["label_mask"], masked["label_mask"])
    np.testing.assert_array_equal(chosen["inputs"], inputs)  # the model masks, once


def test_history_part_is_train_then_train_and_valid(ml100k):
    split = make_split(ml100k, "loo")
    assert len(history_part(split, "valid")) == len(split.train)
    assert len(history_part(split, "test")) == len(split.train) + len(split.valid)
    with pytest.raises(ValueError, match="part"):
        history_part(split, "train")
