"""LightGCN (He et al., SIGIR 2020): weightless propagation over the user-item graph.

Each user and item has one ego embedding (a row of one node table). ``K`` layers of the
symmetric-normalised adjacency, with no weights and no nonlinearity, are averaged into the
final embeddings (``tfrecs.layers.graph_propagation``); a score is the dot product of the
final user and item vectors. Propagation runs once per training step over the whole graph
(one sparse-dense matmul per layer), then the batch's rows are gathered.

Nodes live in the ``FeatureSpec`` lookup-index space: user node ``lookup(user_id)``, item
node ``num_user_rows + lookup(item_id)``. OOV buckets are isolated nodes, so an unknown id
gets its (scaled) ego embedding. Losses: ``"bpr"`` (pairwise, on ``user_id``, ``item_id``,
``negative_item_id``) or ``"softmax"`` (the TFRS Retrieval task's in-batch sampled softmax).

Example::

    spec = FeatureSpec([Feature("user_id", "categorical"), Feature("item_id", "categorical")])
    spec = spec.fit(joined_columns(split.train))
    model = LightGCN(spec, split.train.interactions["user_id"], split.train.interactions["item_id"])
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(bpr_triples, epochs=10)
    query_tower, candidate_tower = model.export_towers()
"""
import threading
from typing import Mapping, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.graph_propagation import GraphPropagation, check_index_range, normalized_adjacency
from tfrecs.models.base import RetrievalModel
from tfrecs.core.registration import export

LOSSES = ("bpr", "softmax")


class IdTower(tf_keras.Model):
    """A plain tower: raw id -> lookup -> row of a frozen embedding table.

    Args:
        feature: the id feature read from the batch dict.
        lookup: the ``FeatureSpec`` lookup layer of that feature (None: ids are indices).
        table: ``[vocabulary_size, d]`` final embeddings in lookup-index order.
    """

    def __init__(self, feature: str, lookup, table: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.feature = feature
        self.lookup = lookup
        self.table = tf.Variable(np.asarray(table, np.float32), trainable=False, name=f"{feature}_embeddings")

    def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        if self.feature not in features:
            raise KeyError(f"the batch is missing feature {self.feature!r} (has {sorted(features)})")
        ids = features[self.feature]
        indices = self.lookup(ids) if self.lookup is not None else ids
        return tf.gather(self.table, tf.cast(indices, tf.int64))


@export("tfrecs.models.LightGCN", name="lightgcn")
class LightGCN(RetrievalModel):
    """LightGCN retrieval model on raw user / item ids (see the module docstring).

    Args:
        spec: a fitted ``FeatureSpec`` with categorical ``user_key`` and ``item_key``.
        user_ids, item_ids: the TRAINING interactions (raw ids, or lookup indices when
            ``raw_ids=False``) that make the graph's edges.
        embedding_dim: size of the ego (and final) embeddings.
        num_layers: propagation layers ``K``.
        loss: ``"bpr"`` or ``"softmax"``.
        l2: BPR's L2 weight on the batch's ego embeddings (``l2/2 * ||e||^2`` per row).
        temperature: softmax temperature (``loss="softmax"``).
        raw_ids: inputs are raw ids (looked up by the spec) or pre-computed lookup indices.
        user_key, item_key, negative_key: feature names of the batch.
        **kwargs: passed to ``RetrievalModel`` (e.g. ``sampling_probability_key``).

    Raises:
        KeyError: ``user_key`` / ``item_key`` not in the spec.
        EmptyGraphError: no training interaction.
        ValueError: unknown ``loss``, ``embedding_dim < 1``.
    """

    def __init__(self, spec: FeatureSpec, user_ids: np.ndarray, item_ids: np.ndarray, embedding_dim: int = 64,
                 num_layers: int = 3, loss: str = "bpr", l2: float = 1e-4, temperature: float = 0.1,
                 raw_ids: bool = True, user_key: str = "user_id", item_key: str = "item_id",
                 negative_key: str = "negative_item_id", **kwargs):
        if loss not in LOSSES:
            raise ValueError(f"loss={loss!r} is not a LightGCN loss; choose one of {LOSSES}")
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        kwargs.setdefault("candidate_id_key", item_key)
        super().__init__(temperature=temperature if loss == "softmax" else None, **kwargs)
        self.spec, self.user_key, self.item_key, self.negative_key = spec, user_key, item_key, negative_key
        self.loss_kind, self.l2, self.raw_ids = loss, float(l2), raw_ids
        self.num_user_rows = spec[user_key].vocabulary_size
        self.num_item_rows = spec[item_key].vocabulary_size
        self.user_lookup = spec.lookup_layer(user_key) if raw_ids else None
        self.item_lookup = spec.lookup_layer(item_key) if raw_ids else None
        users = self._user_indices(tf.constant(np.asarray(user_ids))).numpy()
        items = self._item_indices(tf.constant(np.asarray(item_ids))).numpy()
        self.propagation = GraphPropagation(
            normalized_adjacency(users, items, self.num_user_rows, self.num_item_rows), num_layers=num_layers)
        self.ego_embeddings = self.add_weight(
            name="ego_embeddings", shape=(self.num_user_rows + self.num_item_rows, embedding_dim),
            initializer=tf_keras.initializers.GlorotUniform(seed=0))
        self.embedding_dim = embedding_dim
        # The step's propagated table, per thread: MirroredStrategy runs replicas in threads.
        object.__setattr__(self, "_step", threading.local())

    # -- ids -> node rows ------------------------------------------------------------------------------
    def _feature(self, features: Mapping[str, tf.Tensor], key: str) -> tf.Tensor:
        if key not in features:
            raise KeyError(f"LightGCN: the batch is missing feature {key!r} (has {sorted(features)})")
        return features[key]

    def _user_indices(self, ids: tf.Tensor) -> tf.Tensor:
        if self.user_lookup is not None:
            return tf.cast(self.user_lookup(ids), tf.int64)
        return check_index_range(ids, self.num_user_rows, self.user_key)

    def _item_indices(self, ids: tf.Tensor) -> tf.Tensor:
        if self.item_lookup is not None:
            return tf.cast(self.item_lookup(ids), tf.int64)
        return check_index_range(ids, self.num_item_rows, self.item_key)

    def node_embeddings(self, training: bool = False) -> tf.Tensor:
        """``[user rows + item rows, d]`` final (layer-mean) embeddings; once per step in training."""
        nodes = getattr(self._step, "nodes", None)
        return nodes if nodes is not None else self.propagation(self.ego_embeddings)

    def compute_query_embeddings(self, features, training: bool = False) -> tf.Tensor:
        users = self._user_indices(self._feature(features, self.user_key))
        return tf.gather(self.node_embeddings(training), users)

    def compute_candidate_embeddings(self, features, training: bool = False) -> tf.Tensor:
        items = self._item_indices(self._feature(features, self.item_key))
        return tf.gather(self.node_embeddings(training), self.num_user_rows + items)

    # -- losses ----------------------------------------------------------------------------------------
    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """BPR or sampled-softmax loss, propagating the graph once for the whole step."""
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        self._step.nodes = self.propagation(self.ego_embeddings)
        try:
            if self.loss_kind == "softmax":
                return super().compute_loss(inputs, training=training)
            return self._bpr_loss(features, self._step.nodes)
        finally:
            self._step.nodes = None

    def _bpr_loss(self, features, nodes: tf.Tensor) -> tf.Tensor:
        users = self._user_indices(self._feature(features, self.user_key))
        rows = [users, self.num_user_rows + self._item_indices(self._feature(features, self.item_key)),
                self.num_user_rows + self._item_indices(self._feature(features, self.negative_key))]
        user, positive, negative = (tf.gather(nodes, r) for r in rows)
        difference = tf.reduce_sum(user * positive, axis=1) - tf.reduce_sum(user * negative, axis=1)
        loss = tf.reduce_sum(tf.nn.softplus(-difference))
        if self.l2:
            ego = tf.gather(self.ego_embeddings, tf.concat(rows, axis=0))
            loss += 0.5 * self.l2 * tf.reduce_sum(tf.square(ego))
        return self.replica_loss(loss, tf.shape(users)[0])

    # -- export ----------------------------------------------------------------------------------------
    def export_towers(self) -> Tuple[IdTower, IdTower]:
        """(query tower, candidate tower): raw id -> final embedding, from a frozen table.

        The graph is propagated once; the towers hold no graph and no trainable weight, so
        they serve like any factorised model's towers (e.g. behind a ScaNN index).
        """
        nodes = self.node_embeddings().numpy()
        lookups = (self.spec.lookup_layer(self.user_key), self.spec.lookup_layer(self.item_key)) \
            if self.raw_ids else (None, None)
        return (IdTower(self.user_key, lookups[0], nodes[: self.num_user_rows], name="query_tower"),
                IdTower(self.item_key, lookups[1], nodes[self.num_user_rows:], name="candidate_tower"))
