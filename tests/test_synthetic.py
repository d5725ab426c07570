"""Synthetic generators: deterministic for a seed, streamable, with learnable planted structure."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs.data import (
    iter_synthetic_ctr,
    make_split,
    synthetic_ctr,
    synthetic_ctr_world,
    synthetic_implicit,
    synthetic_sequences,
)
from tfrecs.evaluation import auc
from tfrecs.evaluation.protocols import evaluate_protocol
from tfrecs.models.popularity import Popularity


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


def test_generators_are_deterministic_for_a_seed():
    assert _same(
        synthetic_implicit(200, 100, 10, seed=5).interactions, synthetic_implicit(200, 100, 10, seed=5).interactions
    )
    assert not _same(
        synthetic_implicit(200, 100, 10, seed=5).interactions, synthetic_implicit(200, 100, 10, seed=6).interactions
    )
    assert _same(synthetic_ctr(3000, 50, seed=5), synthetic_ctr(3000, 50, seed=5))
    assert not _same(synthetic_ctr(3000, 50, seed=5), synthetic_ctr(3000, 50, seed=6))
    assert _same(synthetic_sequences(50, 40, seed=5).interactions, synthetic_sequences(50, 40, seed=5).interactions)


def test_streaming_yields_bounded_chunks_that_add_up():
    chunks = list(iter_synthetic_ctr(10_000, 100, seed=1, chunk_size=3000))
    assert [len(c["label"]) for c in chunks] == [3000, 3000, 3000, 1000]
    whole = synthetic_ctr(10_000, 100, seed=1, chunk_size=3000)
    assert np.array_equal(np.concatenate([c["C7"] for c in chunks]), whole["C7"])


def test_ctr_schema_and_zipf_ids():
    rows = synthetic_ctr(200_000, vocabulary_sizes=1000, zipf_exponent=1.05, seed=2)
    assert sorted(rows) == sorted([f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)] + ["label"])
    assert (
        rows["C3"].dtype == np.int64 and rows["I3"].dtype == np.float32 and set(np.unique(rows["label"])) == {0.0, 1.0}
    )
    counts = np.sort(np.bincount(rows["C3"], minlength=1000))[::-1]
    assert counts[0] / counts[1] == pytest.approx(2**1.05, rel=0.1)  # Zipf: f(1)/f(2) = 2^a
    assert counts[0] / counts[9] == pytest.approx(10**1.05, rel=0.15)


def test_implicit_interactions_are_distinct_per_user_and_sized():
    ds = synthetic_implicit(num_users=300, num_items=120, interactions_per_user=15, seed=3)
    assert len(ds) == 4500 and ds.num_items == 120
    pairs = set(zip(ds.interactions["user_id"].tolist(), ds.interactions["item_id"].tolist()))
    assert len(pairs) == 4500
    with pytest.raises(ValueError, match="interactions_per_user \\(200\\) exceeds num_items \\(120\\)"):
        synthetic_implicit(num_users=3, num_items=120, interactions_per_user=200)


def _train_matrix(split):
    matrix = np.zeros((split.train.num_users, split.train.num_items), dtype=np.float32)
    matrix[split.train.user_indices(), split.train.item_indices()] = 1.0
    return matrix


def test_a_low_rank_model_beats_popularity_on_the_planted_implicit_structure():
    split = make_split(synthetic_implicit(num_users=600, num_items=300, interactions_per_user=30, seed=4), "random")
    u, s, vt = np.linalg.svd(_train_matrix(split), full_matrices=False)
    reconstruction = tf.constant((u[:, :8] * s[:8]) @ vt[:8])
    svd = evaluate_protocol(lambda users: tf.gather(reconstruction, users), split, "random-full")
    pop = evaluate_protocol(Popularity.from_dataset(split.train), split, "random-full")
    assert svd["ndcg@10"] > 1.5 * pop["ndcg@10"], (svd, pop)


def test_a_transition_model_beats_popularity_on_the_planted_markov_chain():
    ds = synthetic_sequences(num_users=800, num_items=200, min_length=10, max_length=30, seed=5)
    split = make_split(ds, "loo")
    items, users = split.train.item_indices(), split.train.user_indices()
    order = np.lexsort((split.train.interactions["timestamp"], users))
    same_user = users[order][1:] == users[order][:-1]
    transitions = np.zeros((ds.num_items, ds.num_items), dtype=np.float32)
    np.add.at(transitions, (items[order][:-1][same_user], items[order][1:][same_user]), 1.0)
    last_item = np.zeros(ds.num_users, dtype=np.int64)  # before test: each user's validation item
    last_item[split.valid.user_indices()] = split.valid.item_indices()
    scores = tf.constant(transitions[last_item])
    markov = evaluate_protocol(lambda u: tf.gather(scores, u), split, "loo-full")
    pop = evaluate_protocol(Popularity.from_dataset(split.train), split, "loo-full")
    assert markov["hr@10"] > pop["hr@10"] + 0.2, (markov, pop)


def test_ctr_labels_follow_a_learnable_model_whose_crosses_a_linear_model_misses():
    vocabulary, seed = 200, 6
    rows = synthetic_ctr(80_000, vocabulary, seed=seed)  # i.i.d. rows: the first 60k train, the rest test
    train = {k: v[:60_000] for k, v in rows.items()}
    test = {k: v[60_000:] for k, v in rows.items()}
    fields = [f"C{i}" for i in range(1, 27)]

    def ids(rows):
        return np.stack([rows[f] + i * vocabulary for i, f in enumerate(fields)], axis=1)

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input(shape=(26,), dtype="int64")
    logit = tf_keras.layers.Lambda(lambda x: tf.reduce_sum(x, axis=1))(
        tf_keras.layers.Embedding(26 * vocabulary, 1)(inputs)
    )
    linear = tf_keras.Model(inputs, tf_keras.layers.Activation("sigmoid")(logit))
    linear.compile(tf_keras.optimizers.Adam(0.05), "binary_crossentropy")
    linear.fit(ids(train), train["label"], batch_size=1024, epochs=4, verbose=0)
    linear_auc = auc(test["label"], linear.predict(ids(test), batch_size=8192, verbose=0)[:, 0])
    bayes_auc = auc(test["label"], synthetic_ctr_world(vocabulary, seed=seed).logits(test))
    assert linear_auc > 0.6, linear_auc
    assert bayes_auc > linear_auc + 0.02, (bayes_auc, linear_auc)
