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
* ``PQEmbedding`` (product quantisation; trained as in Differentiable Product
  Quantization, Chen et al. 2020): the vector is cut into ``M`` sub-vectors and each is one
  of ``K`` centroids of its sub-space, so an id is ``M`` small integer codes and the table
  ``[V, M]`` codes + ``[M, K, D / M]`` codebooks. While training (``frozen=False``) each id
  has a full-precision query row; a call snaps each of its sub-vectors to the nearest
  centroid and returns the centroids, with a straight-through gradient to the query (the
  centroids get the task's gradient directly). ``frozen=True`` holds only codes and
  codebooks: what serving needs, made by ``freeze()`` from a trained layer or by
  ``PQEmbedding.from_table`` (k-means per sub-space, ``product_quantize``) from any trained
  table (post-training quantisation).

``make_compressed_embedding(feature, embedding_dim)`` builds the one a ``Feature``'s
``compression`` names; ``FeatureEmbedding`` calls it for those features.

Example::

    layer = QREmbedding(vocabulary_size=1_000_000, embedding_dim=16)   # 2 x 1000 rows
    vectors = layer(tf.constant([3, 999_999], tf.int64))                # (2, 16)
    layer.memory_bytes()                                                 # 128000
"""

import math
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FeatureSpecError

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


def default_subspaces(embedding_dim: int) -> int:
    """``M`` when a ``pq`` feature leaves ``pq_subspaces`` unset: sub-vectors of 4 values
    (of 2, or 1, when 4 does not divide ``embedding_dim``)."""
    return embedding_dim // next(width for width in (4, 2, 1) if embedding_dim % width == 0)


def code_dtype(num_centroids: int) -> tf.DType:
    """The smallest integer dtype that holds codes ``0..num_centroids-1``: uint8, int16 or int32."""
    if num_centroids <= 256:
        return tf.uint8
    return tf.int16 if num_centroids <= 32768 else tf.int32


def _check_pq(vocabulary_size: int, embedding_dim: int, num_subspaces: int, num_centroids: int, who: str) -> None:
    _check_vocabulary(vocabulary_size, embedding_dim)
    for argument, value in (("num_subspaces", num_subspaces), ("num_centroids", num_centroids)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{who}: {argument} must be a whole number >= 1, got {value!r}")
    if embedding_dim % num_subspaces:
        raise ValueError(
            f"{who}: num_subspaces={num_subspaces} does not divide embedding_dim={embedding_dim} "
            "(each sub-space takes embedding_dim / num_subspaces values)"
        )
    if num_centroids > 2**31 - 1:
        raise ValueError(f"{who}: num_centroids must be < 2**31, got {num_centroids}")


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding; once every distinct point is a centre, the rest repeat random points."""
    centres = [points[rng.integers(len(points))]]
    nearest = ((points - centres[0]) ** 2).sum(axis=1)
    while len(centres) < k:
        total = nearest.sum()
        index = rng.choice(len(points), p=nearest / total) if total > 0 else rng.integers(len(points))
        centres.append(points[index])
        nearest = np.minimum(nearest, ((points - points[index]) ** 2).sum(axis=1))
    return np.stack(centres)


def _assign(points: np.ndarray, centres: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each point (ties: the lower index) and the squared distance to it."""
    distances = (points**2).sum(axis=1, keepdims=True) - 2.0 * points @ centres.T + (centres**2).sum(axis=1)[np.newaxis]
    distances = np.maximum(distances, 0.0)
    labels = distances.argmin(axis=1)
    return labels, distances[np.arange(len(points)), labels]


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> Tuple[np.ndarray, float]:
    """Lloyd's k-means from a k-means++ start: ``(centres [k, d], inertia)``; an emptied
    cluster takes the point farthest from its centre."""
    centres = _kmeans_plus_plus(points, k, rng)
    labels, nearest = _assign(points, centres)
    for _ in range(iterations):
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, points)
        sizes = np.bincount(labels, minlength=k)
        updated = np.where(sizes[:, np.newaxis] > 0, sums / np.maximum(sizes, 1)[:, np.newaxis], centres)
        for empty in np.flatnonzero(sizes == 0):
            farthest = int(nearest.argmax())
            updated[empty], nearest[farthest] = points[farthest], 0.0
        if np.array_equal(updated, centres):
            break
        centres = updated
        labels, nearest = _assign(points, centres)
    return centres, float(nearest.sum())


def product_quantize(
    table, num_subspaces: int, num_centroids: int, seed: int = 0, iterations: int = 50, restarts: int = 3
) -> Tuple[np.ndarray, np.ndarray]:
    """Post-training product quantisation of a ``[V, D]`` table: k-means in each sub-space.

    Each of the ``M = num_subspaces`` column blocks of ``D / M`` values is clustered into
    ``K = num_centroids`` centroids (k-means++ start, Lloyd iterations in float64, the best
    of ``restarts`` runs by squared error, all drawn from ``seed``). A sub-space with at most
    ``K`` distinct sub-vectors is reproduced exactly.

    Args:
        table: ``[V, D]`` float array (e.g. a trained embedding table).
        num_subspaces, num_centroids: ``M`` (divides ``D``) and ``K``.
        seed: seed of the k-means starts.
        iterations: most Lloyd iterations per run (stops early when the centres settle).
        restarts: k-means runs per sub-space; the one with the least squared error is kept.

    Returns:
        ``(codes [V, M]`` in ``code_dtype(K)``, ``codebooks [M, K, D / M]`` float32).

    Raises:
        ValueError: a table that is not 2-D, not finite or empty, bad ``M`` / ``K``.

    Example::

        codes, codebooks = product_quantize(trained_table, num_subspaces=4, num_centroids=256)
        approx = pq_reconstruct(codes, codebooks)   # [V, D]
    """
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] < 1:
        raise ValueError(f"product_quantize: expected a non-empty [vocabulary, dim] table, got shape {table.shape}")
    _check_pq(table.shape[0], table.shape[1], num_subspaces, num_centroids, "product_quantize")
    if not np.isfinite(table).all():
        raise ValueError("product_quantize: the table holds NaN or infinite values")
    if iterations < 0 or restarts < 1:
        raise ValueError(f"product_quantize: iterations must be >= 0 and restarts >= 1, got {iterations}, {restarts}")
    width = table.shape[1] // num_subspaces
    rng = np.random.default_rng([seed, 0x5051])
    codes = np.zeros((table.shape[0], num_subspaces), dtype=code_dtype(num_centroids).as_numpy_dtype)
    codebooks = np.zeros((num_subspaces, num_centroids, width), dtype=np.float32)
    for m in range(num_subspaces):
        points = table[:, m * width : (m + 1) * width]
        runs = [_kmeans(points, num_centroids, rng, iterations) for _ in range(restarts)]
        centres = min(runs, key=lambda run: run[1])[0]
        codes[:, m] = _assign(points, centres)[0]
        codebooks[m] = centres
    return codes, codebooks


def pq_reconstruct(codes, codebooks) -> np.ndarray:
    """``[V, D]`` vectors of ``codes [V, M]`` read from ``codebooks [M, K, D / M]``."""
    codes, codebooks = np.asarray(codes).astype(np.int64), np.asarray(codebooks)
    parts = [codebooks[m][codes[:, m]] for m in range(codebooks.shape[0])]
    return np.concatenate(parts, axis=1)


@export("tfrecs.layers.PQEmbedding")
class PQEmbedding(ConfigFromInit, tf_keras.layers.Layer):
    """Product-quantised embeddings: id ``i`` -> ``concat_m codebooks[m, codes[i, m]]``.

    Two forms (see the module docstring):

    * ``frozen=False`` (training, Differentiable Product Quantization): ``queries [V, D]``
      (full precision) and ``codebooks [M, K, D / M]``, both trainable. A call splits the
      ids' query rows into ``M`` sub-vectors, takes each one's nearest centroid (squared
      Euclidean distance) and returns the centroids; the gradient reaches the centroids
      directly and the queries straight through (as if the snapping were the identity).
      ``commitment > 0`` adds ``commitment * mean ||query - centroids||^2`` to the layer's
      losses (pulling queries and their centroids together, so codes settle).
    * ``frozen=True`` (serving): non-trainable ``codes [V, M]`` (uint8 for ``K <= 256``,
      else int16 / int32) and ``codebooks``. ``freeze()`` and ``from_table`` make one.

    The output of a trained layer and of its ``freeze()`` copy are identical.

    Args:
        vocabulary_size: number of ids ``V``.
        embedding_dim: vector size ``D``.
        num_subspaces: ``M`` (divides ``D``; default: sub-vectors of 4 values, see
            ``default_subspaces``).
        num_centroids: ``K`` centroids per sub-space.
        frozen: the serving form (codes + codebooks only).
        commitment: weight of the commitment loss while training (0 switches it off).

    Raises:
        ValueError: non-positive sizes, ``M`` not dividing ``D``, ``commitment < 0``.

    Example::

        layer = PQEmbedding(100_000, 16, num_subspaces=4, num_centroids=256)
        layer(tf.constant([3, 7], tf.int64)).shape        # (2, 16), trainable
        serving = layer.freeze()                           # codes + codebooks only
        serving.memory_bytes()                             # 100_000 * 4 + 4 * 256 * 4 * 4 = 416_384
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int,
        num_subspaces: Optional[int] = None,
        num_centroids: int = 256,
        frozen: bool = False,
        commitment: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        num_subspaces = (
            default_subspaces(embedding_dim) if num_subspaces is None and embedding_dim > 0 else num_subspaces
        )
        _check_pq(vocabulary_size, embedding_dim, num_subspaces, num_centroids, f"PQEmbedding {self.name!r}")
        if not commitment >= 0:
            raise ValueError(f"PQEmbedding {self.name!r}: commitment must be >= 0, got {commitment!r}")
        self.vocabulary_size, self.embedding_dim = int(vocabulary_size), int(embedding_dim)
        self.num_subspaces, self.num_centroids = int(num_subspaces), int(num_centroids)
        self.frozen, self.commitment = bool(frozen), float(commitment)
        self.subspace_dim = self.embedding_dim // self.num_subspaces
        self.codebooks = self.add_weight(
            "codebooks",
            shape=(self.num_subspaces, self.num_centroids, self.subspace_dim),
            initializer=tf_keras.initializers.RandomUniform(-0.05, 0.05),
        )
        if self.frozen:
            self.codes = self.add_weight(
                "codes",
                shape=(self.vocabulary_size, self.num_subspaces),
                dtype=code_dtype(self.num_centroids),
                initializer="zeros",
                trainable=False,
            )
            self.queries = None
        else:
            self.queries = self.add_weight(
                "queries",
                shape=(self.vocabulary_size, self.embedding_dim),
                initializer=tf_keras.initializers.RandomUniform(-0.05, 0.05),
            )
            self.codes = None
        # Row m * K + k of the flattened codebooks is centroid k of sub-space m.
        self._code_offsets = tf.constant(np.arange(self.num_subspaces) * self.num_centroids, tf.int64)

    @classmethod
    def from_table(
        cls, table, num_subspaces: Optional[int] = None, num_centroids: int = 256, seed: int = 0, **kwargs
    ) -> "PQEmbedding":
        """A frozen layer that quantises a trained ``[V, D]`` table (``product_quantize``).

        Example::

            serving = PQEmbedding.from_table(embedding.get_weights()[0], num_subspaces=8, num_centroids=256)
        """
        table = np.asarray(table, dtype=np.float32)
        if table.ndim != 2:
            raise ValueError(f"PQEmbedding.from_table: expected a [vocabulary, dim] table, got shape {table.shape}")
        num_subspaces = default_subspaces(table.shape[1]) if num_subspaces is None else num_subspaces
        codes, codebooks = product_quantize(table, num_subspaces, num_centroids, seed=seed)
        layer = cls(table.shape[0], table.shape[1], num_subspaces, num_centroids, frozen=True, **kwargs)
        layer.set_codes(codes, codebooks)
        return layer

    def _nearest(self, queries: tf.Tensor) -> tf.Tensor:
        """``[N, M]`` int64 code of each sub-vector of ``queries [N, D]`` (nearest centroid)."""
        parts = tf.reshape(tf.cast(queries, tf.float32), [-1, self.num_subspaces, self.subspace_dim])
        centroids = tf.cast(self.codebooks, tf.float32)
        # ||q - c||^2 without the ||q||^2 term, which does not change the argmin.
        distances = tf.reduce_sum(centroids**2, axis=-1)[tf.newaxis] - 2.0 * tf.einsum("nmd,mkd->nmk", parts, centroids)
        return tf.argmin(distances, axis=-1, output_type=tf.int64)

    def _lookup(self, codes: tf.Tensor) -> tf.Tensor:
        """``[N, M, D / M]`` centroids of ``codes [N, M]``."""
        flat = tf.reshape(self.codebooks, [self.num_subspaces * self.num_centroids, self.subspace_dim])
        return tf.gather(tf.cast(flat, self.compute_dtype), tf.cast(codes, tf.int64) + self._code_offsets)

    def call(self, indices: tf.Tensor) -> tf.Tensor:
        ids = tf.cast(indices, tf.int64)
        flat_ids = tf.reshape(ids, [-1])
        if self.frozen:
            centroids = self._lookup(tf.gather(self.codes, flat_ids))
        else:
            queries = tf.gather(self.queries, flat_ids)
            centroids = self._lookup(self._nearest(queries))
            parts = tf.reshape(tf.cast(queries, self.compute_dtype), [-1, self.num_subspaces, self.subspace_dim])
            if self.commitment > 0:
                gap = tf.reduce_sum(tf.cast(parts - centroids, tf.float32) ** 2, axis=[1, 2])
                self.add_loss(self.commitment * tf.reduce_mean(gap))
            # Forward: exactly the centroids (parts - stop_gradient(parts) is 0); backward: the
            # identity to the queries (straight-through) and the gather's gradient to the centroids.
            centroids = centroids + (parts - tf.stop_gradient(parts))
        shape = tf.concat([tf.shape(ids), [self.embedding_dim]], axis=0)
        return tf.reshape(centroids, shape)

    def assigned_codes(self, batch_size: int = 65536) -> np.ndarray:
        """``[V, M]`` codes of every id: the stored codes (frozen) or each query's nearest centroids."""
        if self.frozen:
            return self.codes.numpy()
        parts = [
            self._nearest(self.queries[start : start + batch_size]).numpy()
            for start in range(0, self.vocabulary_size, batch_size)
        ]
        return np.concatenate(parts).astype(code_dtype(self.num_centroids).as_numpy_dtype)

    def set_codes(self, codes, codebooks=None) -> None:
        """Sets a frozen layer's codes (``[V, M]``, each in ``[0, K)``) and, if given, its codebooks.

        Raises:
            ValueError: the layer is not frozen, or the shapes / code range do not fit.
        """
        if not self.frozen:
            raise ValueError(f"PQEmbedding {self.name!r}: set_codes needs a frozen layer (frozen=True)")
        codes = np.asarray(codes)
        if codes.shape != (self.vocabulary_size, self.num_subspaces):
            raise ValueError(
                f"PQEmbedding {self.name!r}: codes of shape {codes.shape}, expected "
                f"{(self.vocabulary_size, self.num_subspaces)}"
            )
        if codes.size and (codes.min() < 0 or codes.max() >= self.num_centroids):
            raise ValueError(f"PQEmbedding {self.name!r}: codes must lie in [0, {self.num_centroids})")
        self.codes.assign(codes.astype(self.codes.dtype.as_numpy_dtype))
        if codebooks is not None:
            self.codebooks.assign(np.asarray(codebooks, dtype=self.codebooks.dtype.as_numpy_dtype))

    def freeze(self, **kwargs) -> "PQEmbedding":
        """The serving copy: a frozen layer with this layer's codes and codebooks (same outputs)."""
        config = {**self.get_config(), "frozen": True, **kwargs}
        frozen = type(self).from_config(config)
        frozen.set_codes(self.assigned_codes(), self.codebooks.numpy())
        return frozen

    def memory_bytes(self) -> int:
        """Serving bytes: codes ``V x M x code size`` + codebooks ``K x D`` values (while
        training, the queries add ``training_memory_bytes() - memory_bytes()``)."""
        code_bytes = self.vocabulary_size * self.num_subspaces * code_dtype(self.num_centroids).size
        return int(code_bytes + self.num_centroids * self.embedding_dim * _itemsize(self.dtype))

    def training_memory_bytes(self) -> int:
        """Bytes held now: ``memory_bytes()`` plus the query table of an unfrozen layer."""
        queries = 0 if self.frozen else self.vocabulary_size * self.embedding_dim * _itemsize(self.dtype)
        return int(self.memory_bytes() + queries)


def make_compressed_embedding(feature, embedding_dim: int, seed: int = 0) -> tf_keras.layers.Layer:
    """The layer a fitted ``Feature``'s ``compression`` asks for (rows = its vocabulary size).

    Raises:
        FeatureSpecError: ``pq_subspaces`` does not divide ``embedding_dim`` (names the feature).
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
    if feature.compression == "pq":
        subspaces = feature.pq_subspaces or default_subspaces(embedding_dim)
        if embedding_dim % subspaces:
            raise FeatureSpecError(
                f"feature {feature.name!r}: pq_subspaces={subspaces} does not divide embedding_dim={embedding_dim} "
                "(each sub-space takes embedding_dim / pq_subspaces values)"
            )
        return PQEmbedding(size, embedding_dim, subspaces, feature.pq_centroids, frozen=feature.pq_frozen, name=name)
    raise ValueError(f"feature {feature.name!r}: no compressed embedding for compression={feature.compression!r}")
