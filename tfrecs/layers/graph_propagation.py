"""LightGCN's graph: the symmetric-normalised user-item adjacency and weightless propagation.

Users and items are the nodes of one bipartite graph: user ``u`` is node ``u``, item ``i``
is node ``num_users + i``. ``normalized_adjacency`` builds ``D^-1/2 A D^-1/2`` as a
``tf.sparse.SparseTensor``; ``GraphPropagation`` applies it ``K`` times to a node table
(no weights, no nonlinearity) and returns the mean of the ``K + 1`` layers. Each layer is
one sparse-dense matmul over the whole graph.

Example::

    adjacency = normalized_adjacency(users, items, num_users=943, num_items=1682)
    propagate = GraphPropagation(adjacency, num_layers=3)
    final = propagate(ego_embeddings)          # [943 + 1682, d], layer mean
"""

from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.registration import export


class EmptyGraphError(ValueError):
    """The interaction graph has no edge (nothing to propagate over)."""


def normalized_adjacency(
    user_indices: np.ndarray, item_indices: np.ndarray, num_users: int, num_items: int
) -> tf.sparse.SparseTensor:
    """Symmetric-normalised adjacency ``D^-1/2 A D^-1/2`` of the user-item graph.

    ``A`` has a 1 for every distinct (user, item) interaction, in both directions; nodes
    ``0..num_users-1`` are users, ``num_users..num_users+num_items-1`` items. Duplicate
    interactions count once; isolated nodes get an empty row.

    Args:
        user_indices, item_indices: interaction pairs as dense indices (same length).
        num_users, num_items: node counts of each side.

    Returns:
        A float32 ``SparseTensor`` of shape ``[num_users + num_items] * 2`` in canonical order.

    Raises:
        EmptyGraphError: there is no interaction.
        ValueError: lengths differ or an index is outside its side's range.

    Example::

        a = normalized_adjacency(np.array([0, 0, 1]), np.array([0, 1, 1]), 2, 2)
        tf.sparse.to_dense(a)[0, 2]   # 1 / sqrt(deg(user 0) * deg(item 0)) = 1 / sqrt(2)
    """
    users = np.asarray(user_indices, dtype=np.int64).reshape(-1)
    items = np.asarray(item_indices, dtype=np.int64).reshape(-1)
    if len(users) != len(items):
        raise ValueError(f"user_indices and item_indices differ in length: {len(users)} vs {len(items)}")
    if len(users) == 0:
        raise EmptyGraphError("the interaction graph is empty: LightGCN needs at least one (user, item) interaction")
    for name, values, size in (("user_indices", users, num_users), ("item_indices", items, num_items)):
        if values.min() < 0 or values.max() >= size:
            raise ValueError(f"{name} must be in [0, {size}), got range [{values.min()}, {values.max()}]")
    keys = np.unique(users * num_items + items)
    users, items = keys // num_items, keys % num_items + num_users
    num_nodes = int(num_users + num_items)
    degree = np.bincount(np.concatenate([users, items]), minlength=num_nodes).astype(np.float64)
    weights = 1.0 / np.sqrt(degree[users] * degree[items])
    rows = np.concatenate([users, items])
    cols = np.concatenate([items, users])
    order = np.lexsort((cols, rows))
    return tf.sparse.SparseTensor(
        indices=np.stack([rows[order], cols[order]], axis=1),
        values=np.concatenate([weights, weights])[order].astype(np.float32),
        dense_shape=[num_nodes, num_nodes],
    )


@export("tfrecs.layers.GraphPropagation")
class GraphPropagation(tf_keras.layers.Layer):
    """``sum_k w_k A^k E`` for ``k = 0..num_layers``: LightGCN's weightless propagation.

    The graph is interaction data, not architecture: its edges are kept as two
    non-trainable weights (``edge_indices`` ``[E, 2]`` int64, ``edge_values`` ``[E]``
    float32) so they save and restore with the other weights, and the config holds only
    their sizes (``num_nodes``, ``num_edges``). ``from_config`` builds the layer with
    zero-filled edges that loading the weights fills in.

    Args:
        adjacency: the normalised adjacency (``normalized_adjacency``), ``[N, N]``; ``None``
            with ``num_nodes`` and ``num_edges`` for a layer whose edges are loaded later.
        num_layers: ``K`` propagation layers (0 returns the input).
        layer_weights: optional ``K + 1`` weights of the layer combination (default: the
            mean, ``1 / (K + 1)`` each, as in the paper).
        num_nodes: ``N`` (default: the adjacency's size).
        num_edges: stored non-zeros ``E`` (default: the adjacency's).

    Raises:
        ValueError: negative ``num_layers``, a non-square or non-symmetric adjacency, sizes
            that disagree with the adjacency (or are missing without one), wrong number of
            layer weights, or (at call) an input with a different number of rows.

    Example::

        propagate = GraphPropagation(normalized_adjacency(users, items, 943, 1682), num_layers=3)
        final = propagate(ego_embeddings)                                # [2625, d]
        clone = GraphPropagation.from_config(propagate.get_config())     # same sizes, zero edges
        clone.set_weights(propagate.get_weights())                       # same graph
    """

    def __init__(
        self,
        adjacency: Optional[tf.sparse.SparseTensor] = None,
        num_layers: int = 3,
        layer_weights: Optional[Sequence[float]] = None,
        num_nodes: Optional[int] = None,
        num_edges: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if adjacency is not None:
            shape = adjacency.dense_shape.numpy() if hasattr(adjacency.dense_shape, "numpy") else adjacency.dense_shape
            if len(shape) != 2 or shape[0] != shape[1]:
                raise ValueError(f"the adjacency must be square, got shape {list(shape)}")
            _check_symmetric(adjacency)
            sizes = {"num_nodes": int(shape[0]), "num_edges": int(adjacency.indices.shape[0])}
            given = {"num_nodes": num_nodes, "num_edges": num_edges}
            wrong = [
                f"{key}={given[key]} (the adjacency has {value})"
                for key, value in sizes.items()
                if given[key] is not None and given[key] != value
            ]
            if wrong:
                raise ValueError(f"GraphPropagation: {', '.join(wrong)}")
            num_nodes, num_edges = sizes["num_nodes"], sizes["num_edges"]
        elif num_nodes is None or num_edges is None:
            raise ValueError("GraphPropagation needs an adjacency, or num_nodes and num_edges (edges loaded later)")
        if layer_weights is None:
            layer_weights = np.full(num_layers + 1, 1.0 / (num_layers + 1))
        if len(layer_weights) != num_layers + 1:
            raise ValueError(f"layer_weights needs num_layers + 1 = {num_layers + 1} entries, got {len(layer_weights)}")
        self.num_nodes = int(num_nodes)
        self.num_edges = int(num_edges)
        self.num_layers = int(num_layers)
        self.layer_weights = [float(w) for w in layer_weights]
        self.edge_indices = self.add_weight(
            "edge_indices", shape=(self.num_edges, 2), dtype=tf.int64, initializer="zeros", trainable=False
        )
        self.edge_values = self.add_weight(
            "edge_values", shape=(self.num_edges,), dtype=tf.float32, initializer="zeros", trainable=False
        )
        if adjacency is not None:
            self.edge_indices.assign(tf.cast(adjacency.indices, tf.int64))
            self.edge_values.assign(tf.cast(adjacency.values, tf.float32))

    @property
    def adjacency(self) -> tf.sparse.SparseTensor:
        """The normalised adjacency the layer propagates over (read from its edge weights)."""
        return tf.sparse.SparseTensor(
            tf.convert_to_tensor(self.edge_indices),
            tf.convert_to_tensor(self.edge_values),
            [self.num_nodes, self.num_nodes],
        )

    def get_config(self) -> Dict[str, Any]:
        """Sizes and layer weights; the edges are weights, not config."""
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "layer_weights": list(self.layer_weights),
            "num_nodes": self.num_nodes,
            "num_edges": self.num_edges,
        }

    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        """``[N, d]`` node embeddings -> ``[N, d]`` weighted layer combination (float32)."""
        if embeddings.shape[0] is not None and embeddings.shape[0] != self.num_nodes:
            raise ValueError(
                f"the graph has {self.num_nodes} nodes but the embedding table has {embeddings.shape[0]} rows"
            )
        layer = tf.cast(embeddings, tf.float32)
        if not self.num_layers:
            return self.layer_weights[0] * layer
        return self._propagate(self._csr(), layer)

    def _csr(self) -> tf.Tensor:
        """The adjacency as a CSR matrix (O(nnz), once per call and once per gradient)."""
        return tf.raw_ops.SparseTensorToCSRSparseMatrix(
            indices=tf.convert_to_tensor(self.edge_indices),
            values=tf.convert_to_tensor(self.edge_values),
            dense_shape=tf.constant([self.num_nodes, self.num_nodes], tf.int64),
        )

    def _propagate(self, csr: tf.Tensor, embeddings: tf.Tensor) -> tf.Tensor:
        """``sum_k w_k A^k E`` with a hand-written gradient.

        ``A`` is symmetric, so the gradient is ``w_0 g + A (w_1 g + A (w_2 g + ...))``: the
        same CSR sparse-dense matmuls, in the order automatic differentiation takes them
        (TensorFlow's generic sparse gradient transposes ``A`` every step, over ten times
        slower on CPU). The gradient rebuilds its CSR matrix from the edge weights instead of
        closing over the forward one, so a SavedModel can serialise it.
        """
        weights = self.layer_weights

        @tf.custom_gradient
        def propagate(x):
            layer, total = x, weights[0] * x
            for weight in weights[1:]:
                layer = tf.raw_ops.SparseMatrixMatMul(a=csr, b=layer)
                total += weight * layer

            def grad(upstream):
                upstream = tf.convert_to_tensor(upstream)  # a gather's gradient arrives as IndexedSlices
                backward_csr = self._csr()
                through = upstream * weights[-1]
                for weight in reversed(weights[:-1]):
                    through = upstream * weight + tf.raw_ops.SparseMatrixMatMul(a=backward_csr, b=through)
                return through

            return total, grad

        return propagate(embeddings)


def _check_symmetric(adjacency: tf.sparse.SparseTensor) -> None:
    indices, values = np.asarray(adjacency.indices), np.asarray(adjacency.values)
    forward, backward = np.lexsort((indices[:, 1], indices[:, 0])), np.lexsort((indices[:, 0], indices[:, 1]))
    if not (
        np.array_equal(indices[forward], indices[backward][:, ::-1]) and np.allclose(values[forward], values[backward])
    ):
        raise ValueError("the adjacency must be symmetric (an undirected user-item graph)")


def check_index_range(indices: tf.Tensor, size: int, feature: str) -> tf.Tensor:
    """``indices`` (int64) after asserting ``0 <= index < size``, for pre-indexed ids.

    Pre-indexed ids (``raw_ids=False``) are the lookup indices ``FeatureSpec.encode`` gives
    (the spec's OOV buckets first, then known values by training frequency), not catalogue
    positions; they bypass the lookups, so an index outside the vocabulary is an error,
    named with its feature.

    Raises:
        tf.errors.InvalidArgumentError: an index is outside ``[0, size)``.
    """
    indices = tf.cast(indices, tf.int64)
    message = (
        f"feature {feature!r}: id outside the vocabulary [0, {size}); pre-indexed ids "
        "(raw_ids=False) are FeatureSpec.encode lookup indices; pass raw ids to map unknown ones to OOV"
    )
    checks = [
        tf.debugging.assert_non_negative(indices, message=message),
        tf.debugging.assert_less(indices, tf.constant(size, tf.int64), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(indices)
