"""MMoE / shared bottom: gates sum to one per task, both learn the planted crosses of the
synthetic CTR data better than logistic / linear regression, uncertainty weighting follows Kendall et
al. exactly, and bad labels / missing fields are named."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs import models
from tfrecs.data import Feature, FeatureSpec
from tfrecs.data.synthetic import synthetic_ctr, synthetic_ctr_world
from tfrecs.evaluation import auc
from tfrecs.layers.experts import MixtureOfExperts
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.models.base import MissingInputError, RankingModel
from tfrecs.models.mmoe import MMoE, SharedBottom, default_tasks

CTR_ARGS = dict(vocabulary_sizes=20, num_crosses=4, cross_dim=4, cross_strength=4.0, seed=5)


def test_gates_sum_to_one_per_task_and_mix_the_experts():
    moe = MixtureOfExperts(num_experts=3, expert_units=(8, 4), task_names=("a", "b"))
    x = tf.random.normal([5, 6])
    gates = moe.gates(x)
    outputs = moe(x)
    assert set(gates) == {"a", "b"} and gates["a"].shape == (5, 3) and outputs["b"].shape == (5, 4)
    for name in ("a", "b"):
        np.testing.assert_allclose(tf.reduce_sum(gates[name], axis=1).numpy(), np.ones(5), rtol=1e-6)
        experts = tf.stack([expert(x) for expert in moe.experts], axis=1)
        np.testing.assert_allclose(
            outputs[name].numpy(), tf.einsum("be,beu->bu", gates[name], experts).numpy(), rtol=1e-5, atol=1e-6
        )
    with pytest.raises(ValueError, match="num_experts must be >= 1"):
        MixtureOfExperts(0, (4,), ("a",))


def _crossed_data(rows):
    """Synthetic CTR rows restricted to the crossed fields; tasks: like (the label) and rating
    (the hidden logit standardised, a regression target driven by the same crosses)."""
    columns = synthetic_ctr(rows, **CTR_ARGS)
    world = synthetic_ctr_world(**CTR_ARGS)
    fields = sorted({f"C{f + 1}" for pair in world.crosses for f in pair})
    data = {name: columns[name] for name in fields}
    data["like"] = columns["label"]
    logits = world.logits(columns)
    data["rating"] = ((logits - logits.mean()) / logits.std()).astype(np.float32)
    return data, fields


class _LinearModels(RankingModel):
    """Logistic regression for like and linear regression for rating, on the same fields."""

    def __init__(self, spec):
        super().__init__(tasks=default_tasks())
        self.embedding = FeatureEmbedding(spec, 2)
        self.bias = tf_keras.layers.Dense(2)

    def call(self, features, training=False):
        outputs = self.bias(tf.reduce_sum(self.embedding.stacked(features), axis=1))
        return {"like": outputs[:, :1], "rating": outputs[:, 1:]}


def _fit(model, train, epochs=3):
    tf.random.set_seed(2)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    keep = set(model.label_keys.values()) | set(model.embedding.feature_names)
    data = tf.data.Dataset.from_tensor_slices({k: v for k, v in train.items() if k in keep}).shuffle(8192, seed=2)
    model.fit(data.batch(128), epochs=epochs, verbose=0)
    return model


def test_mmoe_and_shared_bottom_learn_the_planted_crosses_better_than_linear_models():
    data, fields = _crossed_data(6000)
    train, test = ({k: v[rows] for k, v in data.items()} for rows in (slice(0, 4500), slice(4500, None)))
    spec = FeatureSpec([Feature(name, "categorical", dtype="int64") for name in fields]).fit(train)
    features = {name: test[name] for name in fields}
    results = {}
    for name, model in (
        ("linear", _LinearModels(spec)),
        ("mmoe", MMoE(spec, embedding_dim=8, num_experts=3, expert_units=(32,), tower_units=(16,))),
        ("shared_bottom", SharedBottom(spec, embedding_dim=8, expert_units=(32,), tower_units=(16,))),
    ):
        predictions = _fit(model, train).predict(features, verbose=0)
        results[name] = (
            auc(test["like"], predictions["like"][:, 0]),
            float(np.sqrt(np.mean((predictions["rating"][:, 0] - test["rating"]) ** 2))),
        )
    print("(like auc, rating rmse):", results)
    linear_auc, linear_rmse = results.pop("linear")
    for name, (like_auc, rating_rmse) in results.items():
        assert like_auc > linear_auc + 0.03, (name, like_auc, linear_auc)
        assert rating_rmse < linear_rmse - 0.05, (name, rating_rmse, linear_rmse)


def test_uncertainty_weighting_is_kendalls_loss_and_its_variances_learn():
    spec = FeatureSpec([Feature("user_id", "categorical")]).fit({"user_id": np.array(["a", "b"])})
    model = MMoE(spec, embedding_dim=4, num_experts=2, expert_units=(4,), tower_units=(), uncertainty_weighting=True)
    batch = {
        "user_id": tf.constant(["a", "b", "a"]),
        "like": tf.constant([1.0, 0.0, 0.0]),
        "rating": tf.constant([4.0, 2.0, 1.0]),
    }
    model.log_variances.assign([0.3, -0.2])
    logits = model({"user_id": batch["user_id"]})
    like_logits, rating = logits["like"][:, 0].numpy(), logits["rating"][:, 0].numpy()
    probability = 1 / (1 + np.exp(-like_logits))
    bce = -np.mean([np.log(probability[0]), np.log(1 - probability[1]), np.log(1 - probability[2])])
    mse = np.mean((rating - np.array([4.0, 2.0, 1.0])) ** 2)
    expected = np.exp(-0.3) * bce + 0.5 * np.exp(0.2) * mse + 0.5 * (0.3 - 0.2)
    np.testing.assert_allclose(float(model.compute_loss(batch)), expected, rtol=1e-5)
    assert model.task_weights() == pytest.approx({"like": np.exp(-0.3), "rating": 0.5 * np.exp(0.2)})
    with tf.GradientTape() as tape:
        loss = model.compute_loss(batch)
    gradient = tape.gradient(loss, model.log_variances).numpy()  # d/ds of c exp(-s) L + s / 2
    np.testing.assert_allclose(gradient, [0.5 - np.exp(-0.3) * bce, 0.5 - 0.5 * np.exp(0.2) * mse], rtol=1e-4)
    with pytest.raises(ValueError, match="either loss_weights or uncertainty_weighting"):
        MMoE(spec, loss_weights={"like": 2.0}, uncertainty_weighting=True)


def test_registered_names_and_clear_errors():
    assert models.get("mmoe") is MMoE and models.get("shared_bottom") is SharedBottom
    spec = FeatureSpec([Feature("user_id", "categorical"), Feature("item_id", "categorical")]).fit(
        {"user_id": np.array(["a"]), "item_id": np.array(["x"])}
    )
    model = MMoE(spec, embedding_dim=2, num_experts=2, expert_units=(2,), tower_units=())
    good = {
        "user_id": tf.constant(["a", "a"]),
        "item_id": tf.constant(["x", "y"]),
        "like": tf.constant([1.0, 0.0]),
        "rating": tf.constant([5.0, 1.0]),
    }
    assert np.isfinite(float(model.compute_loss(good)))
    not_binary = r"task like: its labels \(feature like\) must hold only 0 and 1"
    with pytest.raises(tf.errors.InvalidArgumentError, match=not_binary):
        model.compute_loss({**good, "like": tf.constant([1.0, 4.0])})
    with pytest.raises(ValueError, match=r"no label feature\(s\) \['rating'\]"):
        model.compute_loss({k: v for k, v in good.items() if k != "rating"})
    with pytest.raises(MissingInputError, match=r"MMoE reads input\(s\) \['item_id'\]"):
        model({"user_id": tf.constant(["a"])})
    with pytest.raises(ValueError, match=r"features \['like'\] are label features"):
        MMoE(FeatureSpec([Feature("like", "numeric")]).fit({"like": np.array([1.0])}), features=["like"])
    with pytest.raises(ValueError, match="shared-bottom model has no gates"):
        SharedBottom(spec).gates(good)
    gates = model.gates(good)
    np.testing.assert_allclose(tf.reduce_sum(gates["like"], axis=1).numpy(), [1.0, 1.0], rtol=1e-6)
    # predict: task -> probability (binary) or value (regression); labels in the batch are ignored.
    logits = model({"user_id": good["user_id"], "item_id": good["item_id"]})
    predicted = model.predict(good, verbose=0)
    np.testing.assert_allclose(predicted["like"], tf.sigmoid(logits["like"]).numpy(), rtol=1e-6)
    np.testing.assert_allclose(predicted["rating"], logits["rating"].numpy(), rtol=1e-6)
