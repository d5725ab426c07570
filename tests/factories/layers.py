"""Tiny cases of every exported ``tfrecs.layers`` class, for ``tests/test_layer_serialization.py``.

A layer case's ``batch`` is the layer's call input: a tensor, a dict of tensors, or a tuple
of positional inputs (``CrossV1``, ``TargetAttention``, the transformer layers). Its probe
(``probe_layer``) calls either the layer itself or a Keras model wrapping it (which takes
a tuple as a list). Everything is deterministic: fixed data, fixed seeds where weights are
drawn at construction.
"""

from typing import Any, Callable, Dict

import numpy as np
import tensorflow as tf
import tf_keras

from factories import Case
from factories.probe import as_arrays
from tfrecs.data import Feature, FeatureSpec, object_column
from tfrecs.layers import (
    CIN,
    MLP,
    CrossV1,
    FeatureEmbedding,
    Float16Embedding,
    FMInteraction,
    GraphPropagation,
    HashEmbedding,
    ItemLookup,
    MixtureOfExperts,
    PQEmbedding,
    QREmbedding,
    SequenceEncoder,
    TargetAttention,
    TransformerBlock,
)
from tfrecs.layers.graph_propagation import normalized_adjacency


def probe_layer(obj, batch) -> Dict[str, np.ndarray]:
    """Outputs of a layer, or of a model wrapping it, on a case's batch (inference mode)."""
    if isinstance(obj, tf_keras.Model):
        return as_arrays(obj(list(batch) if isinstance(batch, tuple) else batch, training=False))
    return as_arrays(obj(*batch, training=False) if isinstance(batch, tuple) else obj(batch, training=False))


def _case(layer, batch) -> Case:
    return Case(obj=layer, batch=batch, probe=probe_layer, train=False)


def _normal(*shape, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def feature_columns() -> Dict[str, np.ndarray]:
    """Eight rows of every feature kind (string and int64 ids, dense / bucketised numerics)."""
    return {
        "user_id": np.array(["u1", "u2", "u1", "u3", "u2", "u1", "u4", "u3"]),
        "item_id": np.array([10, 11, 12, 10, 10, 13, 11, 12], dtype=np.int64),
        "age": np.array([20.0, 30.0, 40.0, 25.0, 35.0, 45.0, 50.0, 22.0], dtype=np.float32),
        "year": np.array([1990, 1995, 2000, 1985, 1999, 2003, 1970, 1993], dtype=np.int64),
        "genres": object_column(
            [
                ("Drama",),
                ("Comedy", "Drama"),
                (),
                ("Action",),
                ("Drama", "Action"),
                ("Comedy",),
                ("Drama",),
                ("Action", "Comedy", "Drama"),
            ]
        ),
        "history": object_column([(10, 11), (12,), (), (10, 12, 13), (11,), (13, 10), (12, 11), (10,)]),
        "title": np.array(["Heat", "The Heat", "Up", "Up and away", "Heat", "Away", "The Up", "Heat up"]),
    }


def fitted_spec(compressed: bool = False) -> FeatureSpec:
    """A fitted spec over ``feature_columns``; ``compressed``: ids stored hash / qr / float16."""
    compression = (lambda kind: kind) if compressed else (lambda kind: None)
    return FeatureSpec(
        [
            Feature(
                "user_id", "categorical", num_oov_buckets=2, compression=compression("hash"), compression_buckets=3
            ),
            Feature("item_id", "categorical", dtype="int64", compression=compression("qr")),
            Feature("age", "numeric"),
            Feature("year", "numeric", num_buckets=3),
            Feature("genres", "sequence", max_length=3, compression=compression("float16")),
            Feature("history", "sequence", dtype="int64"),
            Feature("title", "text", max_length=4),
        ]
    ).fit(feature_columns())


def raw_columns() -> Dict[str, np.ndarray]:
    """Four rows of raw features, with unseen ids, an empty sequence and raw padding."""
    return {
        "user_id": np.array(["u2", "stranger", "u1", "u4"]),
        "item_id": np.array([11, 99, 10, 13], np.int64),
        "age": np.array([30.0, 61.0, 18.0, 41.0], np.float32),
        "year": np.array([1991, 2010, 1980, 1996], np.int64),
        "genres": object_column([("Drama", "Comedy"), (), ("Western",), ("Action", "", "Drama", "Comedy")]),
        "history": object_column([(10, 11), (-1, 12), (), (99, 13, 10)]),
        "title": np.array(["the heat", "zzz", "Up up", "away heat"]),
    }


def as_batch(columns: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Columns as tensors: list columns become ragged tensors."""

    def tensor(values):
        if values.dtype != object:
            return tf.constant(values)
        dtype = tf.string if any(isinstance(v, str) for row in values for v in row) else tf.int64
        return tf.ragged.constant([list(row) for row in values], dtype=dtype)

    return {name: tensor(values) for name, values in columns.items()}


def _feature_embedding() -> Case:
    return _case(FeatureEmbedding(fitted_spec(), embedding_dim=4, name="feature_embedding"), as_batch(raw_columns()))


def _feature_embedding_compressed() -> Case:
    layer = FeatureEmbedding(
        fitted_spec(compressed=True),
        embedding_dim=4,
        numeric_as="values",
        embeddings_initializer=tf_keras.initializers.RandomNormal(stddev=0.1, seed=0),
        embeddings_regularizer="l2",
    )
    return _case(layer, as_batch(raw_columns()))


def _feature_embedding_pre_indexed() -> Case:
    layer = FeatureEmbedding(
        fitted_spec(), embedding_dim=4, raw_ids=False, features=["history", "item_id", "age", "genres", "user_id"]
    )
    return _case(layer, as_batch(fitted_spec().encode(raw_columns())))


def _feature_embedding_pq() -> Case:
    """Trained PQ ids (user_id), frozen PQ item ids, min_count pruning on the history."""
    fitted = {"vocabulary": None, "mean": None, "std": None, "boundaries": None, "pruned_values": None}
    changes = {
        "user_id": dict(compression="pq", pq_subspaces=2, pq_centroids=3),
        "item_id": dict(compression="pq", pq_subspaces=4, pq_centroids=300, pq_frozen=True),
        "history": dict(min_count=3),  # item 13 (seen twice) goes to OOV
    }
    declared = [Feature(**{**vars(f), **fitted, **changes.get(f.name, {})}) for f in fitted_spec()]
    spec = FeatureSpec(declared).fit(feature_columns())
    layer = FeatureEmbedding(spec, embedding_dim=4, name="feature_embedding_pq")
    rows = spec["item_id"].vocabulary_size
    layer._compressed["item_id"].set_codes(np.arange(rows * 4).reshape(rows, 4) % 300)  # int16 codes
    return _case(layer, as_batch(raw_columns()))


def _pq_frozen() -> Case:
    layer = PQEmbedding(20, 4, num_subspaces=2, num_centroids=5, frozen=True)
    layer.set_codes(np.arange(40).reshape(20, 2) % 5)
    return _case(layer, tf.constant([[1, 2], [19, 0]], tf.int64))


def _graph_propagation() -> Case:
    adjacency = normalized_adjacency(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), num_users=3, num_items=3)
    return _case(GraphPropagation(adjacency, num_layers=2), _normal(6, 4))


def _target_attention() -> Case:
    mask = tf.constant([[True, True, False], [False, True, True]])
    return _case(TargetAttention(hidden_units=(8, 4)), (_normal(2, 4), _normal(2, 3, 4, seed=1), mask))


def _transformer_inputs():
    return _normal(2, 4, 8), tf.constant([[False, True, True, True], [True, True, True, True]])


FACTORIES: Dict[str, Callable[[], Case]] = {
    "layer_cin": lambda: _case(CIN(layer_sizes=(4, 3), split_half=True), _normal(3, 3, 4)),
    "layer_cross_v1": lambda: _case(CrossV1(), (_normal(3, 5), _normal(3, 5, seed=1))),
    "layer_feature_embedding": _feature_embedding,
    "layer_feature_embedding_compressed": _feature_embedding_compressed,
    "layer_feature_embedding_pre_indexed": _feature_embedding_pre_indexed,
    "layer_feature_embedding_pq": _feature_embedding_pq,
    "layer_float16_embedding": lambda: _case(Float16Embedding(20, 4), tf.constant([[1, 2], [19, 0]], tf.int64)),
    "layer_fm_interaction": lambda: _case(FMInteraction(reduce_sum=False), _normal(3, 3, 4)),
    "layer_graph_propagation": _graph_propagation,
    "layer_hash_embedding": lambda: _case(
        HashEmbedding(50, 4, num_buckets=8, num_hashes=3, seed=1), tf.constant([[1, 2], [49, 0]], tf.int64)
    ),
    "layer_item_lookup": lambda: _case(ItemLookup(["a", "b", "c"]), tf.constant([["", "b", "zz"], ["c", "a", ""]])),
    "layer_item_lookup_int": lambda: _case(ItemLookup(np.arange(5)), tf.constant([[-1, 0, 4, 99]], tf.int64)),
    "layer_mixture_of_experts": lambda: _case(
        MixtureOfExperts(3, (6,), ("like", "rating"), dropout=0.1), _normal(4, 5)
    ),
    "layer_mlp": lambda: _case(MLP((8, 4), dropout=0.1, batch_norm=True, output_units=1, l2=1e-4), _normal(4, 5)),
    "layer_pq_embedding": lambda: _case(
        PQEmbedding(20, 4, num_subspaces=2, num_centroids=3), tf.constant([[1, 2], [19, 0]], tf.int64)
    ),
    "layer_pq_embedding_frozen": _pq_frozen,
    "layer_qr_embedding": lambda: _case(QREmbedding(50, 4, num_buckets=7), tf.constant([[1, 2], [49, 0]], tf.int64)),
    "layer_sequence_encoder": lambda: _case(
        SequenceEncoder(num_blocks=2, num_heads=2, dim=8, max_len=4, dropout=0.1), _transformer_inputs()
    ),
    "layer_target_attention": _target_attention,
    "layer_transformer_block": lambda: _case(
        TransformerBlock(num_heads=2, dim=8, ffn_dim=16, dropout=0.1, causal=False, pre_norm=False, activation="gelu"),
        _transformer_inputs(),
    ),
}
