"""FeatureEmbedding: one fused table, correct rows per feature, pooling over non-padding positions."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs.data import Feature, FeatureSpec, object_column
from tfrecs.layers.feature_embedding import FeatureEmbedding


def _spec():
    columns = {
        "user_id": np.array(["u1", "u2", "u1"]),
        "age": np.array([20.0, 30.0, 40.0], dtype=np.float32),
        "year": np.array([1990, 1995, 2000], dtype=np.int64),
        "genres": object_column([("Drama",), ("Comedy", "Drama"), ()]),
        "title": np.array(["Heat", "The Heat", "Up"]),
    }
    return FeatureSpec(
        [
            Feature("user_id", "categorical"),
            Feature("age", "numeric"),
            Feature("year", "numeric", num_buckets=2),
            Feature("genres", "sequence", max_length=4),
            Feature("title", "text"),
        ]
    ).fit(columns)


def _batch():
    return {
        "user_id": tf.constant(["u2", "stranger"]),
        "age": tf.constant([30.0, 50.0]),
        "year": tf.constant([1991, 2001], dtype=tf.int64),
        "genres": tf.ragged.constant([["Drama", "Comedy"], []]),
        "title": tf.constant(["the heat", "zzz"]),
    }


def test_every_feature_reads_its_own_rows_of_one_fused_table():
    layer = FeatureEmbedding(_spec(), embedding_dim=4)
    out = layer(_batch())
    table = layer.table.embeddings.numpy()
    # offsets in spec order over table-backed features: user_id (2 known + 1 OOV) -> 0, year (2 buckets) -> 3,
    # genres (pad + OOV + 2) -> 5, title (pad + OOV + 3 tokens) -> 9; 14 rows in all.
    assert layer.table_size == 14 and table.shape == (14, 4)
    np.testing.assert_allclose(out["user_id"].numpy(), table[[2, 0]], rtol=1e-6)  # u2 -> 2, stranger -> OOV 0
    np.testing.assert_allclose(out["year"].numpy(), table[[3 + 0, 3 + 1]], rtol=1e-6)  # below / above the median
    drama, comedy = 5 + 2, 5 + 3
    np.testing.assert_allclose(out["genres"].numpy()[0], (table[drama] + table[comedy]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out["genres"].numpy()[1], 0.0, atol=1e-7)  # empty history: zero vector, not NaN
    heat, the = 9 + 2, 9 + 3
    np.testing.assert_allclose(out["title"].numpy()[0], (table[the] + table[heat]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out["title"].numpy()[1], table[9 + 1], rtol=1e-6)  # unknown token -> OOV


def test_dense_numeric_features_scale_a_learned_vector_by_the_normalised_value():
    spec = _spec()
    layer = FeatureEmbedding(spec, embedding_dim=4)
    out = layer(_batch())["age"].numpy()
    z = (np.array([30.0, 50.0]) - spec["age"].mean) / spec["age"].std
    np.testing.assert_allclose(out, z[:, None] * layer.numeric_vectors.numpy()[0], rtol=1e-5)


def test_stacked_and_concatenated_views_and_memory():
    layer = FeatureEmbedding(_spec(), embedding_dim=4, features=["title", "user_id"])
    assert layer.stacked(_batch()).shape == (2, 2, 4)
    assert layer.concatenated(_batch()).shape == (2, 8)
    assert layer.memory_bytes() == (5 + 3) * 4 * 4  # title (5 rows) + user_id (3 rows), float32


def test_gradients_reach_only_the_rows_that_were_used():
    layer = FeatureEmbedding(_spec(), embedding_dim=4, features=["user_id"])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer({"user_id": tf.constant(["u1"])})["user_id"])
    gradient = tf.convert_to_tensor(tape.gradient(loss, layer.table.embeddings)).numpy()
    assert np.flatnonzero(np.abs(gradient).sum(axis=1)).tolist() == [1]


def test_missing_feature_is_named():
    with pytest.raises(KeyError) as error:
        FeatureEmbedding(_spec(), 4)({k: v for k, v in _batch().items() if k != "title"})
    assert "batch is missing feature(s)" in str(error.value) and "title" in str(error.value)


def _shared_weights(raw: FeatureEmbedding, pre_indexed: FeatureEmbedding, raw_batch, encoded_batch):
    raw(raw_batch), pre_indexed(encoded_batch)  # build both
    pre_indexed.set_weights(raw.get_weights())


@pytest.mark.parametrize("compression", [None, "hash", "qr", "float16"])
def test_pre_indexed_encode_indices_read_the_same_rows_as_raw_ids(compression):
    spec = _spec()
    if compression:
        spec = FeatureSpec(
            [
                Feature(**{**vars(f), "compression": compression if f.kind in ("categorical", "sequence") else None})
                for f in spec
            ]
        )
    columns = {
        "user_id": np.array(["u2", "stranger", "u1"]),
        "age": np.array([30.0, 50.0, 20.0], np.float32),
        "year": np.array([1991, 2001, 1990], np.int64),
        "genres": object_column([("Drama", "Comedy"), (), ("Comedy", "Western", "", "Drama", "Drama")]),
        "title": np.array(["the heat", "zzz", "up"]),
    }
    raw_batch = {
        name: tf.ragged.constant([list(r) for r in v], dtype=tf.string) if v.dtype == object else tf.constant(v)
        for name, v in columns.items()
    }
    encoded_batch = {name: tf.constant(v) for name, v in spec.encode(columns).items()}
    raw, pre_indexed = FeatureEmbedding(spec, 4), FeatureEmbedding(spec, 4, raw_ids=False)
    _shared_weights(raw, pre_indexed, raw_batch, encoded_batch)
    expected, got = raw(raw_batch), pre_indexed(encoded_batch)
    for name in spec.names:
        np.testing.assert_allclose(got[name].numpy(), expected[name].numpy(), rtol=1e-6, err_msg=name)
    ragged = dict(encoded_batch, genres=tf.RaggedTensor.from_tensor(encoded_batch["genres"], padding=0))
    np.testing.assert_allclose(pre_indexed(ragged)["genres"].numpy(), expected["genres"].numpy(), rtol=1e-6)


def test_pre_indexed_ids_outside_the_vocabulary_are_named():
    spec = _spec()
    layer = FeatureEmbedding(spec, 4, features=["user_id"], raw_ids=False)
    assert layer({"user_id": tf.constant([0, 2], tf.int64)})["user_id"].shape == (2, 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"feature 'user_id': index outside \[0, 3\)"):
        layer({"user_id": tf.constant([3], tf.int64)})


def test_config_round_trip_and_keras_counts_the_fused_table():
    layer = FeatureEmbedding(
        _spec(),
        embedding_dim=4,
        features=["title", "user_id", "age"],
        embeddings_initializer={"class_name": "RandomNormal", "config": {"stddev": 0.1}},
        embeddings_regularizer="l2",
        name="embedding",
    )
    config = layer.get_config()
    assert config["spec"] == _spec().to_config() and config["features"] == ["title", "user_id", "age"]
    clone = FeatureEmbedding.from_config(config)
    assert clone.get_config() == config and clone.feature_names == layer.feature_names

    class Stacked(tf_keras.Model):
        def __init__(self):
            super().__init__()
            self.embedding = layer

        def call(self, features):
            return self.embedding.stacked(features)

    model = Stacked()
    model(_batch())
    assert layer.built and layer.count_params() == (5 + 3) * 4 + 4  # title + user_id rows, one numeric vector
    lines = []
    model.summary(print_fn=lines.append)
    assert not any("unused" in line for line in lines), lines
    assert f"Total params: {(5 + 3) * 4 + 4}" in "\n".join(lines)
