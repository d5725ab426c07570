"""Embedding tables for huge vocabularies that use less memory than one row per id.

Each layer maps lookup indices in ``[0, vocabulary_size)`` (any shape) to vectors
(shape + ``[embedding_dim]``) and reports ``memory_bytes()``:

* ``HashEmbedding`` (hash embeddings, Svenstrup et al. 2017): ``num_hashes`` fixed
  universal hash functions pick rows of one shared pool of ``num_buckets`` rows; the vector
  is their sum weighted by learned per-id importance weights (read from a small hashed
  table). Two ids share a vector only if all their hashes collide.
* ``QREmbedding`` (quotient-remainder compositional embeddings, Shi et al. 2020): id ``i``
  reads row ``i // m`` of a quotient table and row ``i % m`` of a remainder table and
  multiplies them element-wise; each id has its own (quotient, remainder) pair, so its own
  vector, with ``ceil(V / m) + m`` rows instead of ``V``.
* ``Float16Embedding``: a full table stored in float16 (half the bytes), read as the
  layer's compute dtype.

``make_compressed_embedding(feature, embedding_dim)`` builds the one a ``Feature``'s
``compression`` names; ``FeatureEmbedding`` calls it for those features.

Example::

    layer = QREmbedding(vocabulary_size=1_000_000, embedding_dim=16)   # 2 x 1000 rows
    vectors = layer(tf.constant([3, 999_999], tf.int64))                # (2, 16)
    layer.memory_bytes()                                                 # 128000
"""

import math
from typing import Optional

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export

_PRIME = 2_147_483_647  # 2^31 - 1: universal hashing ((a x + b) mod p) mod buckets in int64


def _itemsize(dtype) -> int:
    return np.dtype(tf.as_dtype(dtype).as_numpy_dtype).itemsize


def _check_vocabulary(vocabulary_size: int, embedding_dim: int) -> None:
    if vocabulary_size < 1 or embedding_dim < 1:
        raise ValueError(f"vocabulary_size and embedding_dim must be >= 1, got {vocabulary_size}, {embedding_dim}")


@export("tfrecs.layers.HashEmbedding")
class HashEmbedding(ConfigFromInit, tf_keras.layers.Layer):
    """Hash embeddings: ``sum_i p_i(x) * pool[h_i(x)]`` over ``num_hashes`` hash functions.

    Args:
        vocabulary_size: number of ids (indices ``0..V-1``).
        embedding_dim: vector size.
        num_buckets: rows of the shared pool (default ``max(1, V // 8)``).
        num_hashes: hash functions (>= 1); 2 or 3 make full collisions rare.
        seed: seed of the hash functions.

    Raises:
        ValueError: non-positive sizes.

    Example::

        HashEmbedding(100_000, 16, num_buckets=12_500)(tf.constant([[3, 7]], tf.int64)).shape   # (1, 2, 16)
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int,
        num_buckets: Optional[int] = None,
        num_hashes: int = 2,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_vocabulary(vocabulary_size, embedding_dim)
        num_buckets = num_buckets or max(1, vocabulary_size // 8)
        if num_buckets < 1 or num_hashes < 1:
            raise ValueError(f"num_buckets and num_hashes must be >= 1, got {num_buckets}, {num_hashes}")
        self.vocabulary_size, self.embedding_dim = vocabulary_size, embedding_dim
        self.num_buckets, self.num_hashes, self.seed = num_buckets, num_hashes, seed
        rng = np.random.default_rng([seed, 0x4A5])
        # One extra hash function addresses the importance-weight table.
        self._a = tf.constant(rng.integers(1, _PRIME, size=num_hashes + 1), tf.int64)
        self._b = tf.constant(rng.integers(0, _PRIME, size=num_hashes + 1), tf.int64)
        self.pool = self.add_weight(
            "pool", shape=(num_buckets, embedding_dim), initializer=tf_keras.initializers.RandomUniform(-0.05, 0.05)
        )
        self.importance = self.add_weight(
            "importance", shape=(num_buckets, num_hashes), initializer=tf_keras.initializers.RandomUniform(0.5, 1.5)
        )

    def hashes(self, indices: tf.Tensor) -> tf.Tensor:
        """``indices`` shape + ``[num_hashes + 1]`` bucket numbers (the last one: importance row)."""
        x = tf.cast(indices, tf.int64)[..., tf.newaxis]
        return tf.math.floormod(tf.math.floormod(self._a * x + self._b, _PRIME), self.num_buckets)

    def call(self, indices: tf.Tensor) -> tf.Tensor:
        buckets = self.hashes(indices)
        rows = tf.gather(tf.cast(self.pool, self.compute_dtype), buckets[..., :-1])  # [..., k, d]
        weights = tf.gather(tf.cast(self.importance, self.compute_dtype), buckets[..., -1])  # [..., k]
        return tf.reduce_sum(rows * weights[..., tf.newaxis], axis=-2)

    def memory_bytes(self) -> int:
        return int((self.num_buckets * (self.embedding_dim + self.num_hashes)) * _itemsize(self.dtype))


@export("tfrecs.layers.QREmbedding")
class QREmbedding(ConfigFromInit, tf_keras.layers.Layer):
    """Quotient-remainder embeddings: ``quotient[i // m] * remainder[i % m]``.

    Args:
        vocabulary_size: number of ids.
        embedding_dim: vector size.
        num_buckets: the remainder modulus ``m`` (default ``ceil(sqrt(V))``, the smallest
            ``ceil(V / m) + m``).

    Raises:
        ValueError: non-positive sizes.

    Example::

        QREmbedding(1_000_000, 16).num_buckets   # 1000 remainder rows, 1000 quotient rows
    """

    def __init__(self, vocabulary_size: int, embedding_dim: int, num_buckets: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        _check_vocabulary(vocabulary_size, embedding_dim)
        m = num_buckets or max(1, math.isqrt(vocabulary_size - 1) + 1)
        if m < 1:
            raise ValueError(f"num_buckets must be >= 1, got {m}")
        self.vocabulary_size, self.embedding_dim, self.num_buckets = vocabulary_size, embedding_dim, m
        self.quotient_rows = -(-vocabulary_size // m)
        self.quotient = self.add_weight(
            "quotient",
            shape=(self.quotient_rows, embedding_dim),
            initializer=tf_keras.initializers.RandomUniform(0.5, 1.5),
        )
        self.remainder = self.add_weight(
            "remainder", shape=(m, embedding_dim), initializer=tf_keras.initializers.RandomUniform(-0.05, 0.05)
        )

    def call(self, indices: tf.Tensor) -> tf.Tensor:
        x = tf.cast(indices, tf.int64)
        q = tf.gather(tf.cast(self.quotient, self.compute_dtype), tf.math.floordiv(x, self.num_buckets))
        r = tf.gather(tf.cast(self.remainder, self.compute_dtype), tf.math.floormod(x, self.num_buckets))
        return q * r

    def memory_bytes(self) -> int:
        return int((self.quotient_rows + self.num_buckets) * self.embedding_dim * _itemsize(self.dtype))


@export("tfrecs.layers.Float16Embedding")
class Float16Embedding(ConfigFromInit, tf_keras.layers.Layer):
    """A full table stored in float16, returned in the layer's compute dtype.

    Float16 keeps ~3 significant digits, enough for embeddings; the optimizer's slots for
    this table are float16 as well, so prefer a learning rate that keeps Adam's second
    moment above float16's range floor (the default 1e-3 works).

    Args:
        vocabulary_size: number of ids.
        embedding_dim: vector size.

    Example::

        Float16Embedding(1000, 16).memory_bytes()   # 32000
    """

    def __init__(self, vocabulary_size: int, embedding_dim: int, **kwargs):
        super().__init__(**kwargs)
        _check_vocabulary(vocabulary_size, embedding_dim)
        self.vocabulary_size, self.embedding_dim = vocabulary_size, embedding_dim
        self.table = self.add_weight(
            "table",
            shape=(vocabulary_size, embedding_dim),
            dtype=tf.float16,
            initializer=tf_keras.initializers.RandomUniform(-0.05, 0.05),
        )

    def call(self, indices: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.gather(self.table, tf.cast(indices, tf.int64)), self.compute_dtype)

    def memory_bytes(self) -> int:
        return int(self.vocabulary_size * self.embedding_dim * 2)


def make_compressed_embedding(feature, embedding_dim: int, seed: int = 0) -> tf_keras.layers.Layer:
    """The layer a fitted ``Feature``'s ``compression`` asks for (rows = its vocabulary size).

    Raises:
        ValueError: the feature has no (or an unknown) compression.
    """
    size = feature.vocabulary_size
    name = f"{feature.name}_{feature.compression}_embedding"
    if feature.compression == "hash":
        return HashEmbedding(size, embedding_dim, feature.compression_buckets, feature.num_hashes, seed=seed, name=name)
    if feature.compression == "qr":
        return QREmbedding(size, embedding_dim, feature.compression_buckets, name=name)
    if feature.compression == "float16":
        return Float16Embedding(size, embedding_dim, name=name)
    raise ValueError(f"feature {feature.name!r}: no compressed embedding for compression={feature.compression!r}")
