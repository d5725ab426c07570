"""Compressed embeddings: distinct vectors for distinct ids, the stated memory, selectable per feature."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.data import Feature, FeatureSpec, FeatureSpecError
from tfrecs.layers.compressed_embedding import Float16Embedding, HashEmbedding, QREmbedding
from tfrecs.layers.feature_embedding import FeatureEmbedding

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
    assert report["user"] == {"bytes": (int(np.ceil(rows / m)) + m) * D * 4, "uncompressed_bytes": rows * D * 4}
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
