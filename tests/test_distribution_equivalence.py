"""Two replicas of MirroredStrategy take the same step as one device with the same global batch.

conftest.py splits the CPU into two logical devices, so ``MirroredStrategy`` runs 2 replicas.
Plain SGD is used so that a gradient off by any factor shows in the weights (Adam's first step
would hide it). Each comparison starts both models from the same weights.
"""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
import tiny_models as tm  # noqa: E402

from tfrecs.models.base import RankingModel  # noqa: E402
from tfrecs.core import cross_replica  # noqa: E402

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def mirrored():
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _one_step(make_model, strategy, data, initial=None):
    """Trains a fresh model one step on the first batch of ``data``; returns weights and loss."""
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.5))
        model.build_from_batch(next(iter(data)))
        if initial is not None:
            for variable, value in zip(model.trainable_variables, initial):
                variable.assign(value)
    before = [v.numpy() for v in model.trainable_variables]
    history = model.fit(data.take(1), epochs=1, verbose=0)
    after = [v.numpy() for v in model.trainable_variables]
    return before, after, history.history["loss"][0]


def _compare(make_model, mirrored, data):
    before, single, single_loss = _one_step(make_model, tf.distribute.get_strategy(), data)
    _, replicated, replicated_loss = _one_step(make_model, mirrored, data, initial=before)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(before, single))
    difference = max(float(np.abs(a - b).max()) for a, b in zip(single, replicated))
    return moved, difference, single_loss, replicated_loss


def _rows(batch, seed=1):
    rows = tm.interactions(batch, seed=seed)
    # Repeat items across the two halves (the two replicas), so accidental hits cross replicas.
    rows["item_id"][batch // 2] = rows["item_id"][0]
    rows["item_id"][1] = rows["item_id"][batch - 1]
    return rows


@pytest.mark.parametrize("batch", [8, 7], ids=["even_split", "uneven_split_4_3"])
def test_ranking_step_under_two_replicas_matches_one_device(mirrored, batch):
    moved, difference, single_loss, replicated_loss = _compare(
        tm.TinyRanking, mirrored, tm.dataset(_rows(batch), batch)
    )
    assert moved > 1e-3, "the step must change the weights for the comparison to mean anything"
    assert difference < TOLERANCE
    assert abs(single_loss - replicated_loss) < TOLERANCE


def test_two_task_weighted_ranking_matches_one_device(mirrored):
    moved, difference, single_loss, replicated_loss = _compare(tm.two_task_ranking, mirrored, tm.dataset(_rows(8), 8))
    assert moved > 1e-3
    assert difference < TOLERANCE
    assert abs(single_loss - replicated_loss) < TOLERANCE


@pytest.mark.parametrize("batch", [8, 7], ids=["even_split", "uneven_split_4_3"])
def test_retrieval_with_cross_replica_negatives_matches_one_device(mirrored, batch):
    moved, difference, single_loss, replicated_loss = _compare(
        tm.TinyRetrieval, mirrored, tm.dataset(_rows(batch), batch)
    )
    assert moved > 1e-3
    assert difference < TOLERANCE
    assert abs(single_loss - replicated_loss) < TOLERANCE


def test_retrieval_with_per_replica_negatives_differs(mirrored):
    """Control: without gathering, each replica sees half the negatives, so the step differs."""
    make = lambda: tm.TinyRetrieval(cross_replica_negatives=False)  # noqa: E731
    _, difference, single_loss, replicated_loss = _compare(make, mirrored, tm.dataset(_rows(8), 8))
    assert difference > 10 * TOLERANCE
    assert replicated_loss < single_loss - 0.1  # 4 candidates per softmax instead of 8


class _PerReplicaMeanRanking(tm.TinyRanking):
    """A wrong normalisation (local mean, as a default Keras reduction would do)."""

    def compute_loss(self, inputs, training=False):
        features, labels, _ = self._split(inputs)
        logits = tf.cast(self(features, training=training), tf.float32)
        loss = self.ranking_tasks["label"](labels=labels["label"][:, None], predictions=logits)
        return loss / cross_replica.batch_size(logits)


def test_per_replica_mean_loss_would_be_caught(mirrored):
    """Control: the equivalence test detects a loss divided by the local batch size."""
    _, difference, _, _ = _compare(_PerReplicaMeanRanking, mirrored, tm.dataset(_rows(8), 8))
    assert difference > 10 * TOLERANCE


def test_gather_candidates_puts_own_rows_first_and_keeps_ids(mirrored):
    values = tf.constant([[0.0], [1.0], [2.0], [3.0], [4.0]])
    ids = tf.constant(["a", "b", "c", "d", "e"])

    def replica_fn(index):
        start = tf.where(index == 0, 0, 3)
        size = tf.where(index == 0, 3, 2)  # uneven: 3 rows on replica 0, 2 on replica 1
        own = tf.slice(values, [start, 0], [size, 1])
        own_ids = tf.slice(ids, [start], [size])
        gathered, gathered_ids, _ = cross_replica.gather_candidates(own, own_ids)
        return gathered[:, 0], gathered_ids

    replica_index = mirrored.experimental_distribute_values_from_function(
        lambda context: tf.constant(context.replica_id_in_sync_group)
    )
    rows, keys = mirrored.run(tf.function(replica_fn), args=(replica_index,))
    rows = [r.numpy().tolist() for r in mirrored.experimental_local_results(rows)]
    keys = [k.numpy().tolist() for k in mirrored.experimental_local_results(keys)]
    assert rows == [[0, 1, 2, 3, 4], [3, 4, 0, 1, 2]]
    expected_keys = tf.strings.to_hash_bucket_fast(ids, 2**63 - 1).numpy().tolist()
    assert keys[0] == expected_keys and keys[1] == expected_keys[3:] + expected_keys[:3]


def test_ranking_base_is_exported_for_subclassing():
    assert issubclass(tm.TinyRanking, RankingModel)


def test_retrieval_loss_matches_hand_computed_softmax_with_accidental_hits():
    """Loss = sum over queries of softmax cross-entropy / batch, duplicate-id negatives masked."""
    model = tm.TinyRetrieval()
    features = {"user_id": tf.constant([0, 1, 2, 3]), "item_id": tf.constant([5, 6, 5, 7])}
    queries = model.compute_query_embeddings(features).numpy()
    candidates = model.compute_candidate_embeddings(features).numpy()
    scores = queries @ candidates.T
    items = features["item_id"].numpy()
    expected = 0.0
    for i in range(4):
        keep = [j for j in range(4) if j == i or items[j] != items[i]]
        row = scores[i, keep]
        expected += np.log(np.exp(row - row.max()).sum()) + row.max() - scores[i, i]
    expected /= 4
    assert abs(float(model.compute_loss(features)) - expected) < 1e-5


@pytest.fixture(scope="module")
def sequences():
    from tfrecs.data import make_split
    from tfrecs.data.synthetic import synthetic_sequences
    from tfrecs.pipelines import SequenceData

    ds = synthetic_sequences(num_users=40, num_items=20, min_length=4, max_length=14, successors=2, seed=7)
    return SequenceData.from_split(make_split(ds, "loo"))


def _first_batch(batches):
    """One fixed batch (shuffling and Cloze masks drawn once), as a dataset both runs read alike."""
    return tf.data.Dataset.from_tensors(next(iter(batches)))


@pytest.mark.parametrize("objective", ["ce", "sampled_softmax"])
def test_sasrec_step_under_two_replicas_matches_one_device(mirrored, sequences, objective):
    """Variable-length histories: the replicas hold different numbers of target positions."""
    from tfrecs.models import SASRec

    data = _first_batch(sequences.causal_batches(max_len=8, batch_size=7, seed=3))
    make = lambda: SASRec(
        sequences.item_ids,
        sequences.counts,
        objective=objective,
        dim=8,
        max_len=8,  # noqa: E731
        num_blocks=1,
        num_heads=2,
        dropout=0.0,
    )
    moved, difference, single_loss, replicated_loss = _compare(make, mirrored, data)
    assert moved > 1e-3
    assert difference < TOLERANCE
    assert abs(single_loss - replicated_loss) < TOLERANCE


def test_bert4rec_step_under_two_replicas_matches_one_device(mirrored, sequences):
    from tfrecs.models import BERT4Rec

    data = _first_batch(sequences.cloze_batches(max_len=8, batch_size=7, mask_probability=0.3, seed=3))
    make = lambda: BERT4Rec(
        sequences.item_ids,
        sequences.counts,
        dim=8,
        max_len=8,
        num_blocks=1,  # noqa: E731
        num_heads=2,
        dropout=0.0,
    )
    moved, difference, single_loss, replicated_loss = _compare(make, mirrored, data)
    assert moved > 1e-3
    assert difference < TOLERANCE
    assert abs(single_loss - replicated_loss) < TOLERANCE
