"""Compressed embeddings: distinct vectors for distinct ids, the stated memory, selectable per feature.

Product quantisation: post-training k-means (exact on tables it can represent, error falling with
K, a hand-computed 4x4 case), the trained straight-through layer (learns a planted table, freezes
to the same outputs, saves and reloads), memory = codes + codebooks, and bad arguments.
"""

import importlib

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs.data import Feature, FeatureSpec, FeatureSpecError
from tfrecs.layers.compressed_embedding import (
    Float16Embedding,
    HashEmbedding,
    PQEmbedding,
    QREmbedding,
    pq_reconstruct,
    product_quantize,
)
from tfrecs.layers.feature_embedding import FeatureEmbedding, quantize_embeddings

V, D = 20_000, 8


def _distinct_rows(vectors: np.ndarray) -> int:
    return len(np.unique(np.asarray(vectors, dtype=np.float32), axis=0))


def test_hash_embedding_distinct_ids_get_distinct_vectors_in_an_eighth_of_the_memory():
    layer = HashEmbedding(V, D, num_buckets=V // 16, num_hashes=2, seed=1)
    vectors = layer(tf.range(V, dtype=tf.int64)).numpy()
    assert _distinct_rows(vectors) >= 0.999 * V
    assert layer.memory_bytes() == (V // 16) * (D + 2) * 4
    assert layer.memory_bytes() < V * D * 4 / 8


def test_qr_embedding_gives_every_id_its_own_vector_with_sqrt_rows():
    layer = QREmbedding(V, D)
    vectors = layer(tf.range(V, dtype=tf.int64)).numpy()
    assert _distinct_rows(vectors) == V
    m = int(np.ceil(np.sqrt(V)))
    assert layer.memory_bytes() == (int(np.ceil(V / m)) + m) * D * 4


def test_float16_embedding_halves_the_memory_and_returns_the_compute_dtype():
    layer = Float16Embedding(V, D)
    vectors = layer(tf.range(V, dtype=tf.int64))
    assert vectors.dtype == tf.float32 and _distinct_rows(vectors.numpy()) == V
    assert layer.memory_bytes() == V * D * 2


def _columns():
    return {
        "user": np.array([f"u{i}" for i in range(300)] * 2),
        "city": np.array(["a", "b", "c"] * 200),
        "age": np.arange(600, dtype=np.float32),
    }


def test_compression_is_selected_per_feature_in_the_spec_and_reported():
    spec = FeatureSpec(
        [Feature("user", "categorical", compression="qr"), Feature("city", "categorical"), Feature("age", "numeric")]
    ).fit(_columns())
    layer = FeatureEmbedding(spec, D)
    out = layer(
        {
            "user": tf.constant(["u1", "u2", "stranger"]),
            "city": tf.constant(["a", "b", "z"]),
            "age": tf.constant([1.0, 2.0, 3.0]),
        }
    )
    assert out["user"].shape == (3, D) and not np.allclose(out["user"][0], out["user"][1])
    report = layer.memory_report()
    rows = 301  # 300 users + 1 OOV
    m = int(np.ceil(np.sqrt(rows)))
    assert report["user"] == {
        "bytes": (int(np.ceil(rows / m)) + m) * D * 4,
        "uncompressed_bytes": rows * D * 4,
        "unpruned_bytes": rows * D * 4,  # min_count 1: nothing pruned
    }
    assert report["city"]["bytes"] == report["city"]["uncompressed_bytes"] == 4 * D * 4
    assert layer.memory_bytes() == sum(entry["bytes"] for entry in report.values())
    assert FeatureSpec.from_json(spec.to_json())["user"].compression == "qr"


def test_bad_compression_settings_name_the_feature():
    with pytest.raises(FeatureSpecError, match="'user'.*unknown compression 'zip'"):
        Feature("user", "categorical", compression="zip")
    with pytest.raises(FeatureSpecError, match="'age'.*compression is for categorical"):
        Feature("age", "numeric", compression="hash")
    with pytest.raises(FeatureSpecError, match="'user'.*num_hashes"):
        Feature("user", "categorical", compression="hash", num_hashes=0)


# Product quantisation ------------------------------------------------------------------------


def test_post_training_pq_reproduces_a_table_of_k_distinct_sub_vectors_exactly():
    rng = np.random.default_rng(3)
    M, K, width = 3, 4, 2
    books = rng.normal(size=(M, K, width)).astype(np.float32)
    codes = np.stack([rng.permutation(np.arange(60) % K) for _ in range(M)], axis=1)  # every centroid used
    table = pq_reconstruct(codes, books)
    found_codes, found_books = product_quantize(table, M, K, seed=5)
    assert found_codes.shape == (60, M) and found_codes.dtype == np.uint8 and found_books.shape == (M, K, width)
    np.testing.assert_array_equal(pq_reconstruct(found_codes, found_books), table)


def test_post_training_pq_error_falls_as_k_grows_and_k_1_is_the_column_means():
    table = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    errors = []
    for k in (1, 2, 4, 8, 16, 32):
        codes, books = product_quantize(table, 2, k, seed=0)
        errors.append(float(((pq_reconstruct(codes, books) - table) ** 2).sum()))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    # K = 1: each sub-space's one centroid is its mean, so the error is the total variance.
    assert errors[0] == pytest.approx(float(((table - table.mean(axis=0)) ** 2).sum()), rel=1e-5)


def test_post_training_pq_of_a_4x4_table_matches_the_hand_computed_error():
    table = np.array([[0, 0, 1, 1], [0, 2, 1, 1], [10, 10, 5, 5], [10, 12, 7, 7]], np.float32)
    codes, books = product_quantize(table, num_subspaces=2, num_centroids=2, seed=0)
    # Sub-space 1: {(0,0), (0,2)} -> (0,1) and {(10,10), (10,12)} -> (10,11): squared error 1 + 1 + 1 + 1.
    # Sub-space 2: {(1,1), (1,1)} -> (1,1) and {(5,5), (7,7)} -> (6,6): squared error 0 + 0 + 2 + 2.
    expected = np.array([[0, 1, 1, 1], [0, 1, 1, 1], [10, 11, 6, 6], [10, 11, 6, 6]], np.float32)
    np.testing.assert_allclose(pq_reconstruct(codes, books), expected, atol=1e-6)
    assert float(((pq_reconstruct(codes, books) - table) ** 2).sum()) == pytest.approx(8.0)
    assert codes[0].tolist() == codes[1].tolist() and codes[2].tolist() == codes[3].tolist()


def _planted(V=200, D=8, M=2, K=16):
    """Targets that a PQ table with ``M`` x ``K`` centroids represents exactly."""
    rng = np.random.default_rng(0)
    books = rng.normal(size=(M, K, D // M)).astype(np.float32)
    return pq_reconstruct(rng.integers(0, K, size=(V, M)), books)


def test_trained_pq_layer_learns_a_planted_table_and_freezes_to_the_same_outputs():
    V, D, M, K = 200, 8, 2, 16
    targets = tf.constant(_planted(V, D, M, K))
    tf_keras.utils.set_random_seed(0)
    layer = PQEmbedding(V, D, num_subspaces=M, num_centroids=K)
    ids = tf.range(V, dtype=tf.int64)
    optimizer = tf_keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer(ids) - targets) ** 2)
            total = loss + tf.add_n(layer.losses)  # the commitment loss
        gradients = tape.gradient(total, layer.trainable_variables)
        assert all(g is not None for g in gradients)  # queries (straight-through) and codebooks
        optimizer.apply_gradients(zip(gradients, layer.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(200)]
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
    frozen = layer.freeze()
    assert (
        frozen.frozen
        and frozen.codes.dtype == tf.uint8
        and [w.name for w in frozen.trainable_weights] == ["codebooks:0"]
    )
    np.testing.assert_array_equal(frozen(ids).numpy(), layer(ids).numpy())
    assert layer.training_memory_bytes() - layer.memory_bytes() == V * D * 4


def test_pq_memory_is_codes_plus_codebooks():
    assert PQEmbedding(1000, 16, num_subspaces=4, num_centroids=256).memory_bytes() == 1000 * 4 * 1 + 256 * 16 * 4
    assert PQEmbedding(1000, 16, num_subspaces=4, num_centroids=300).memory_bytes() == 1000 * 4 * 2 + 300 * 16 * 4
    assert PQEmbedding(1000, 16, num_subspaces=4, num_centroids=40000, frozen=True).codes.dtype == tf.int32
    layer = PQEmbedding(1000, 16, num_subspaces=8, num_centroids=16)
    assert layer.training_memory_bytes() == 1000 * 8 + 16 * 16 * 4 + 1000 * 16 * 4
    spec = FeatureSpec(
        [
            Feature("user", "categorical", compression="pq", pq_subspaces=2, pq_centroids=16),
            Feature("city", "categorical"),
        ]
    ).fit(_columns())
    report = FeatureEmbedding(spec, D).memory_report()
    assert report["user"] == {
        "bytes": 301 * 2 + 16 * D * 4,
        "uncompressed_bytes": 301 * D * 4,
        "unpruned_bytes": 301 * D * 4,
    }


def _pq_model(spec, dim=8):
    """A functional model around a FeatureEmbedding (what the serialization tests wrap)."""
    inputs = {
        "user": tf_keras.Input((), dtype=tf.string, name="user"),
        "city": tf_keras.Input((), dtype=tf.string, name="city"),
    }
    return tf_keras.Model(inputs, FeatureEmbedding(spec, dim, name="embed")(inputs, mode="concatenated"))


def test_trained_pq_model_round_trips_savedmodel_and_keras(tmp_path):
    spec = FeatureSpec(
        [
            Feature("user", "categorical", compression="pq", pq_subspaces=4, pq_centroids=8),
            Feature("city", "categorical"),
        ]
    ).fit(_columns())
    tf_keras.utils.set_random_seed(1)
    model = _pq_model(spec)
    batch = {"user": tf.constant(["u1", "u7", "zz"]), "city": tf.constant(["a", "c", "a"])}
    model.compile(optimizer="adam", loss="mse")
    model.fit(batch, tf.ones((3, 16)), epochs=3, verbose=0)
    expected = model(batch).numpy()
    for path, kwargs in ((tmp_path / "saved", {"save_format": "tf"}), (tmp_path / "model.keras", {})):
        model.save(str(path), **kwargs)
        np.testing.assert_array_equal(tf_keras.models.load_model(str(path))(batch).numpy(), expected)
    serving = quantize_embeddings(model)  # freezes the trained PQ feature: codes + codebooks only
    np.testing.assert_array_equal(serving(batch).numpy(), expected)
    serving.save(str(tmp_path / "serving.keras"))
    reloaded = tf_keras.models.load_model(str(tmp_path / "serving.keras"))
    np.testing.assert_array_equal(reloaded(batch).numpy(), expected)
    layer = reloaded.get_layer("embed")
    assert layer.spec["user"].pq_frozen and not any("queries" in w.name for w in reloaded.weights)


def test_quantize_embeddings_turns_a_trained_table_into_codes_and_keeps_the_rest():
    spec = FeatureSpec([Feature("user", "categorical"), Feature("city", "categorical")]).fit(_columns())
    tf_keras.utils.set_random_seed(2)
    model = _pq_model(spec)
    batch = {"user": tf.constant(["u1", "u7", "zz"]), "city": tf.constant(["a", "c", "z"])}
    model(batch)
    original = model.get_layer("embed")
    trained_users = original.feature_table("user")
    serving = quantize_embeddings(model, ["user"], num_subspaces=2, num_centroids=16, seed=3)
    layer = serving.get_layer("embed")
    codes, books = product_quantize(trained_users, 2, 16, seed=3)
    np.testing.assert_array_equal(layer.feature_table("user"), pq_reconstruct(codes, books))
    np.testing.assert_array_equal(layer.feature_table("city"), original.feature_table("city"))
    np.testing.assert_array_equal(serving(batch).numpy()[:, D:], model(batch).numpy()[:, D:])  # city unchanged
    assert layer.spec["user"].compression == "pq" and layer.spec["user"].pq_frozen
    assert layer.memory_report()["user"]["bytes"] == 301 * 2 + 16 * D * 4
    with pytest.raises(FeatureSpecError, match="feature 'user': pq_subspaces=3 does not divide embedding_dim=8"):
        quantize_embeddings(model, ["user"], num_subspaces=3)
    with pytest.raises(FeatureSpecError, match="feature 'nobody'"):
        quantize_embeddings(model, ["nobody"])


def test_bad_pq_and_min_count_arguments_name_the_feature_and_the_argument():
    with pytest.raises(FeatureSpecError, match="feature 'user': pq_centroids must be a whole number >= 1, got 0"):
        Feature("user", "categorical", compression="pq", pq_centroids=0)
    with pytest.raises(FeatureSpecError, match="feature 'user': pq_subspaces must be a whole number >= 1, got -2"):
        Feature("user", "categorical", compression="pq", pq_subspaces=-2)
    with pytest.raises(FeatureSpecError, match="feature 'user': min_count must be a whole number >= 1, got 0"):
        Feature("user", "categorical", min_count=0)
    with pytest.raises(FeatureSpecError, match="feature 'user': pq_frozen=True needs compression='pq'"):
        Feature("user", "categorical", pq_frozen=True)
    spec = FeatureSpec([Feature("user", "categorical", compression="pq", pq_subspaces=3)]).fit(_columns())
    with pytest.raises(FeatureSpecError, match="feature 'user': pq_subspaces=3 does not divide embedding_dim=8"):
        FeatureEmbedding(spec, D)
    with pytest.raises(ValueError, match="num_subspaces=3 does not divide embedding_dim=8"):
        PQEmbedding(10, 8, num_subspaces=3)
    with pytest.raises(ValueError, match="num_centroids must be a whole number >= 1, got 0"):
        PQEmbedding(10, 8, num_centroids=0)
    with pytest.raises(ValueError, match="product_quantize: num_subspaces=3 does not divide embedding_dim=4"):
        product_quantize(np.zeros((4, 4)), 3, 2)


@pytest.mark.parametrize("family, name", [("ctr", "deepfm"), ("retrieval", "two_tower")])
def test_quantize_embeddings_serves_a_trained_tfrecs_model(family, name, tmp_path):
    factories = importlib.import_module(f"factories.{family}").FACTORIES
    case = factories[name]()
    model, batch = case.obj, case.batch
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=2, verbose=0)
    expected = model(batch)
    # K >= rows: every trained row is its own centroid, so the served model gives the same outputs
    serving = quantize_embeddings(model, ["user_id", "item_id"], num_centroids=64)
    for got, want in zip(tf.nest.flatten(serving(batch)), tf.nest.flatten(expected)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
    layers = [layer for layer in serving.submodules if isinstance(layer, FeatureEmbedding)]
    assert all(layer.spec["item_id"].pq_frozen for layer in layers)
    assert any(isinstance(sub, PQEmbedding) for layer in layers for sub in layer.submodules)
    serving.save(str(tmp_path / "serving.keras"))
    reloaded = tf_keras.models.load_model(str(tmp_path / "serving.keras"))
    for got, want in zip(tf.nest.flatten(reloaded(batch)), tf.nest.flatten(expected)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
    # fewer centroids than rows: smaller, and still a working model
    small = quantize_embeddings(model, ["user_id", "item_id"], num_centroids=2)
    assert all(np.isfinite(x.numpy()).all() for x in tf.nest.flatten(small(batch)))
