"""DIN: target attention reacts to the target, behaviour sequences never leak, DIN beats LR on a
task that needs the target x history match, and bad input is named."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs import models
from tfrecs.data import Feature, FeatureSpec
from tfrecs.data.dataset import object_column
from tfrecs.data.histories import event_histories
from tfrecs.evaluation import auc
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.layers.target_attention import TargetAttention
from tfrecs.models.base import MissingInputError, RankingModel
from tfrecs.models.din import DIN


def test_attention_weights_and_interest_change_with_the_target():
    tf.random.set_seed(0)
    attention = TargetAttention(hidden_units=(8,))
    behaviours = tf.random.normal([1, 4, 6])
    mask = tf.constant([[True, True, True, False]])
    targets = tf.random.normal([2, 6])
    interest, weights = attention(targets, tf.tile(behaviours, [2, 1, 1]), tf.tile(mask, [2, 1]), return_weights=True)
    assert weights.shape == (2, 4) and interest.shape == (2, 6)
    assert float(tf.reduce_max(tf.abs(weights[0, :3] - weights[1, :3]))) > 1e-3  # same history, other target
    assert float(tf.reduce_max(tf.abs(interest[0] - interest[1]))) > 1e-3
    np.testing.assert_array_equal(weights[:, 3].numpy(), [0.0, 0.0])  # padding has no weight
    # The interest vector is exactly the weighted sum of the real behaviours.
    np.testing.assert_allclose(
        interest[0].numpy(), (weights[0, :, None] * behaviours[0]).numpy().sum(0), rtol=1e-5, atol=1e-6
    )


def test_normalized_attention_is_a_masked_softmax():
    attention = TargetAttention(hidden_units=(4,), normalize=True)
    _, weights = attention(
        tf.ones([1, 3]),
        tf.random.normal([1, 5, 3]),
        tf.constant([[True, True, False, True, False]]),
        return_weights=True,
    )
    assert abs(float(tf.reduce_sum(weights)) - 1.0) < 1e-5
    assert float(weights[0, 2]) == 0.0 and float(weights[0, 4]) == 0.0


def test_behaviour_history_is_strictly_earlier_capped_and_row_aligned():
    users = np.array(["u", "v", "u", "u", "u", "v", "u"])
    items = np.array(["a", "x", "b", "c", "d", "y", "e"])
    times = np.array([5, 1, 1, 3, 3, 2, 9])
    history = event_histories(users, items, times, length=2)
    # u: b@1, c@3, d@3, a@5, e@9 (v: x@1, y@2). Same-time rows (c, d) do not see each other.
    expected = [["c", "d"], ["", ""], ["", ""], ["b", ""], ["b", ""], ["x", ""], ["d", "a"]]
    np.testing.assert_array_equal(history, np.array(expected))
    assert (event_histories(users, items, times, length=4)[6] == ["b", "c", "d", "a"]).all()
    with pytest.raises(ValueError, match="length must be >= 1"):
        event_histories(users, items, times, length=0)


def _match_task(rows, seed, num_items=60, clusters=6, length=8):
    """Label 1 iff the target item's hidden cluster is the user's favourite cluster (10 % noise)."""
    rng = np.random.default_rng(seed)
    cluster_of = np.arange(num_items) % clusters
    favourite = rng.integers(0, clusters, rows)
    in_favourite = [np.flatnonzero(cluster_of == c) for c in range(clusters)]
    history = np.stack([rng.choice(in_favourite[c], length) for c in favourite])
    noise = rng.random(history.shape) < 0.25
    history[noise] = rng.integers(0, num_items, int(noise.sum()))
    target = np.where(
        rng.random(rows) < 0.5,
        np.array([rng.choice(in_favourite[c]) for c in favourite]),
        rng.integers(0, num_items, rows),
    )
    label = (cluster_of[target] == favourite).astype(np.float32)
    flip = rng.random(rows) < 0.1
    label[flip] = 1 - label[flip]
    return {"item_id": target.astype(str), "history": history.astype(str), "label": label}


class _LogisticRegression(RankingModel):
    """A linear model over the same inputs: item one-hot + bag of history items."""

    def __init__(self, spec):
        super().__init__()
        self.embedding = FeatureEmbedding(spec, 1)
        self.bias = tf_keras.layers.Dense(1)

    def call(self, features, training=False):
        return self.bias(self.embedding.concatenated(features))


def _fit_and_score(model, train, test, epochs):
    tf.random.set_seed(1)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    data = tf.data.Dataset.from_tensor_slices(train).shuffle(4096, seed=1).batch(128)
    model.fit(data, epochs=epochs, verbose=0)
    features = {k: v for k, v in test.items() if k != "label"}
    return auc(test["label"], model.predict(features, batch_size=1024, verbose=0)[:, 0])


def test_din_learns_the_target_history_match_that_logistic_regression_cannot():
    train, test = _match_task(4000, seed=0), _match_task(1000, seed=1)
    columns = {"item_id": train["item_id"], "history": object_column(list(row) for row in train["history"])}
    spec = FeatureSpec([Feature("item_id", "categorical"), Feature("history", "sequence", max_length=8)]).fit(columns)
    din_auc = _fit_and_score(DIN(spec, embedding_dim=8, attention_units=(16,), hidden_units=(32,)), train, test, 4)
    lr_auc = _fit_and_score(_LogisticRegression(spec), train, test, 4)
    print("AUC din", din_auc, "lr", lr_auc)
    assert lr_auc < 0.62, lr_auc  # a linear model cannot match target to history
    assert din_auc > 0.8, din_auc
    assert din_auc > lr_auc + 0.15


def test_din_is_registered_and_names_missing_fields():
    assert models.get("din") is DIN
    spec = FeatureSpec([Feature("item_id", "categorical"), Feature("user_id", "categorical")]).fit(
        {"item_id": np.array(["a", "b"]), "user_id": np.array(["u", "v"])}
    )
    model = DIN(spec, embedding_dim=4)
    with pytest.raises(MissingInputError, match=r"DIN reads input\(s\) \['history'\].*'history' is the behaviour"):
        model({"item_id": tf.constant(["a"]), "user_id": tf.constant(["u"])})
    with pytest.raises(MissingInputError, match=r"DIN reads input\(s\) \['user_id'\]"):
        model({"item_id": tf.constant(["a"]), "history": tf.constant([["b", ""]])})
    with pytest.raises(ValueError, match="item_key feature 'user_id' must be categorical"):
        DIN(FeatureSpec([Feature("user_id", "numeric")]).fit({"user_id": np.array([1.0])}), item_key="user_id")
    not_binary = r"task label: its labels \(feature label\) must hold only 0 and 1"
    with pytest.raises(tf.errors.InvalidArgumentError, match=not_binary):
        model.compute_loss(
            {
                "item_id": tf.constant(["a"]),
                "user_id": tf.constant(["u"]),
                "history": tf.constant([["b"]]),
                "label": tf.constant([2.0]),
            }
        )
    # Ragged and padded histories give the same logits.
    padded = model({"item_id": tf.constant(["a"]), "user_id": tf.constant(["u"]), "history": tf.constant([["b", ""]])})
    ragged = model(
        {"item_id": tf.constant(["a"]), "user_id": tf.constant(["u"]), "history": tf.ragged.constant([["b"]])}
    )
    np.testing.assert_allclose(padded.numpy(), ragged.numpy(), rtol=1e-6)


def test_ml100k_behaviour_history_matches_a_per_row_reference(ml100k):
    log = ml100k.interactions
    history = event_histories(log["user_id"], log["item_id"], log["timestamp"], length=50)
    rng = np.random.default_rng(0)
    for row in rng.choice(len(history), 150, replace=False):
        mine = log["user_id"] == log["user_id"][row]
        earlier = np.flatnonzero(mine & (log["timestamp"] < log["timestamp"][row]))
        earlier = earlier[np.lexsort((earlier, log["timestamp"][earlier]))][-50:]  # by time, file order in ties
        expected = list(log["item_id"][earlier]) + [""] * (50 - len(earlier))
        assert list(history[row]) == expected, row
        assert log["item_id"][row] not in history[row]  # the target never leaks
