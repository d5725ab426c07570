"""LightGCN (He et al., SIGIR 2020): weightless propagation over the user-item graph.

Each user and item has one ego embedding (a row of one node table). ``K`` layers of the
symmetric-normalised adjacency, with no weights and no nonlinearity, are averaged into the
final embeddings (``tfrecs.layers.graph_propagation``); a score is the dot product of the
final user and item vectors. Propagation runs once per training step over the whole graph
(one sparse-dense matmul per layer), then the batch's rows are gathered.

Nodes live in the ``FeatureSpec`` lookup-index space: user node ``lookup(user_id)``, item
node ``num_user_rows + lookup(item_id)``. OOV buckets are isolated nodes, so an unknown id
gets its (scaled) ego embedding. Objectives: ``"bpr"`` (pairwise, on ``user_id``, ``item_id``,
``negative_item_id``) or ``"softmax"`` (the TFRS Retrieval task's in-batch sampled softmax).

The interaction graph is data, not configuration: the config holds the vocabularies, sizes
and ``num_edges``; the normalised adjacency (its ``2 * num_edges`` indices and values) is
kept in the non-trainable weights of its ``GraphPropagation`` layer, set by ``set_graph``,
so a saved and reloaded model propagates over the same graph. ``final_embeddings()`` and
``export_towers()`` freeze the propagated tables for serving (no propagation per request);
``recommend`` propagates once per call and ranks the spec's known items.

Example::

    spec = FeatureSpec([Feature("user_id", "categorical"), Feature("item_id", "categorical")])
    spec = spec.fit(joined_columns(split.train))
    model = LightGCN.from_interactions(spec, split.train.interactions["user_id"],
                                       split.train.interactions["item_id"])
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(bpr_triples, epochs=10)
    ids, scores = model.recommend({"user_id": tf.constant(["196"])}, k=10)
    query_tower, candidate_tower = model.export_towers()
"""

import threading
from typing import Any, Mapping, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import PACKAGE, export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.graph_propagation import EmptyGraphError, GraphPropagation, normalized_adjacency
from tfrecs.models.base import RetrievalModel, require_inputs

OBJECTIVES = ("bpr", "softmax", "full_softmax")


@tf_keras.saving.register_keras_serializable(package=PACKAGE)
class IdTower(ConfigFromInit, tf_keras.Model):
    """A plain serving tower: raw id -> lookup -> row of a frozen embedding table.

    Args:
        spec: the ``FeatureSpec`` holding ``feature`` (its lookup maps raw ids to rows).
        feature: the id feature read from the batch dict.
        vocabulary_size: rows of the table (``spec[feature].vocabulary_size``).
        embedding_dim: columns of the table.

    The table is a non-trainable weight; ``LightGCN.export_towers`` fills it.
    """

    def __init__(self, spec: FeatureSpec, feature: str, vocabulary_size: int, embedding_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.spec = FeatureSpec.coerce(spec)
        self.feature, self.vocabulary_size, self.embedding_dim = feature, int(vocabulary_size), int(embedding_dim)
        self.lookup = self.spec.lookup_layer(feature)
        self.table = self.add_weight(
            name=f"{feature}_embeddings",
            shape=(self.vocabulary_size, self.embedding_dim),
            initializer="zeros",
            trainable=False,
        )

    def call(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        require_inputs(self.name, features, [self.feature])
        return tf.gather(self.table, tf.cast(self.lookup(features[self.feature]), tf.int64))


@export("tfrecs.models.LightGCN", name="lightgcn")
class LightGCN(RetrievalModel):
    """LightGCN retrieval model on raw user / item ids (see the module docstring).

    Build it with ``LightGCN.from_interactions(spec, user_ids, item_ids, ...)``, or construct
    it with ``num_edges`` and call ``set_graph(user_ids, item_ids)`` before training.

    Args:
        spec: a fitted ``FeatureSpec`` with categorical ``user_key`` and ``item_key``.
        num_edges: distinct (user, item) pairs of the training graph (fixes the graph
            weights' size; ``from_interactions`` counts them).
        embedding_dim: size of the ego (and final) embeddings.
        num_layers: propagation layers ``K``.
        objective: ``"bpr"``, ``"softmax"`` or ``"full_softmax"`` (the training loss).
        l2: BPR's L2 weight on the batch's ego embeddings (``l2/2 * ||e||^2`` per row).
        temperature: softmax temperature (``"softmax"`` and ``"full_softmax"``).
        user_key, item_key, negative_key: feature names of the batch (raw ids).
        **kwargs: passed to ``RetrievalModel`` (e.g. ``sampling_probability_key``).

    Raises:
        KeyError: ``user_key`` / ``item_key`` not in the spec.
        EmptyGraphError: ``num_edges < 1``.
        ValueError: unknown ``objective``, ``embedding_dim < 1``, ``num_layers < 0``.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        num_edges: int,
        embedding_dim: int = 64,
        num_layers: int = 3,
        objective: str = "bpr",
        l2: float = 1e-4,
        temperature: float = 0.1,
        user_key: str = "user_id",
        item_key: str = "item_id",
        negative_key: str = "negative_item_id",
        **kwargs,
    ):
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r} is not a LightGCN objective; choose one of {OBJECTIVES}")
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}")
        if num_edges < 1:
            raise EmptyGraphError(
                "the interaction graph is empty: LightGCN needs at least one (user, item) interaction"
            )
        kwargs.setdefault("candidate_id_key", item_key)
        super().__init__(temperature=temperature if objective == "softmax" else None, **kwargs)
        spec = FeatureSpec.coerce(spec)
        self.spec, self.user_key, self.item_key, self.negative_key = spec, user_key, item_key, negative_key
        self.objective, self.l2, self.temperature = objective, float(l2), temperature
        self.num_edges, self.num_layers, self.embedding_dim = int(num_edges), int(num_layers), int(embedding_dim)
        self.num_user_rows = spec[user_key].vocabulary_size
        self.num_item_rows = spec[item_key].vocabulary_size
        self.user_lookup = spec.lookup_layer(user_key)
        self.item_lookup = spec.lookup_layer(item_key)
        self.propagation = GraphPropagation(
            num_nodes=self.num_user_rows + self.num_item_rows, num_edges=2 * self.num_edges, num_layers=self.num_layers
        )
        self.ego_embeddings = self.add_weight(
            name="ego_embeddings",
            shape=(self.num_user_rows + self.num_item_rows, embedding_dim),
            initializer=tf_keras.initializers.GlorotUniform(seed=0),
        )
        # The step's propagated table, per thread: MirroredStrategy runs replicas in threads.
        object.__setattr__(self, "_step", threading.local())

    @classmethod
    def from_interactions(cls, spec: FeatureSpec, user_ids, item_ids, **kwargs) -> "LightGCN":
        """A model whose graph is the TRAINING interactions ``(user_ids[n], item_ids[n])`` (raw ids).

        Args:
            spec: as in the constructor.
            user_ids, item_ids: raw ids of the training interactions (duplicates count once).
            **kwargs: other constructor keywords (``num_edges`` is counted here).

        Raises:
            EmptyGraphError: no interaction.

        Example::

            model = LightGCN.from_interactions(spec, train.interactions["user_id"], train.interactions["item_id"],
                                               num_layers=3)
        """
        spec = FeatureSpec.coerce(spec)
        user_key, item_key = kwargs.get("user_key", "user_id"), kwargs.get("item_key", "item_id")
        users, items = _lookup(spec, user_key, user_ids), _lookup(spec, item_key, item_ids)
        num_edges = len(np.unique(users * spec[item_key].vocabulary_size + items))
        model = cls(spec, num_edges=num_edges, **kwargs)
        model.set_graph(user_ids, item_ids)
        return model

    def set_graph(self, user_ids, item_ids) -> None:
        """Sets the graph to the interactions ``(user_ids[n], item_ids[n])`` (raw ids).

        Raises:
            EmptyGraphError: no interaction.
            ValueError: the number of distinct pairs is not ``num_edges``.
        """
        users = _lookup(self.spec, self.user_key, user_ids)
        items = _lookup(self.spec, self.item_key, item_ids)
        adjacency = normalized_adjacency(users, items, self.num_user_rows, self.num_item_rows)
        if int(adjacency.values.shape[0]) != 2 * self.num_edges:
            raise ValueError(
                f"the interactions have {int(adjacency.values.shape[0]) // 2} distinct (user, item) "
                f"pairs but the model was built with num_edges={self.num_edges}"
            )
        self.propagation.edge_indices.assign(adjacency.indices)
        self.propagation.edge_values.assign(adjacency.values)

    # -- ids -> node rows ------------------------------------------------------------------------------
    def _rows(self, features: Mapping[str, tf.Tensor], key: str, lookup) -> tf.Tensor:
        require_inputs("LightGCN", features, [key], how="LightGCN reads raw user and item ids.")
        return tf.cast(lookup(features[key]), tf.int64)

    def propagate(self) -> tf.Tensor:
        """``[user rows + item rows, d]`` final (layer-mean) embeddings over the stored graph."""
        return self.propagation(self.ego_embeddings)

    def node_embeddings(self, training: bool = False) -> tf.Tensor:
        """The final node table; propagated once per step in training (and per ``recommend``)."""
        nodes = getattr(self._step, "nodes", None)
        return nodes if nodes is not None else self.propagate()

    def compute_query_embeddings(self, features, training: bool = False) -> tf.Tensor:
        users = self._rows(features, self.user_key, self.user_lookup)
        return tf.gather(self.node_embeddings(training), users)

    def compute_candidate_embeddings(self, features, training: bool = False) -> tf.Tensor:
        items = self._rows(features, self.item_key, self.item_lookup)
        return tf.gather(self.node_embeddings(training), self.num_user_rows + items)

    # -- losses ----------------------------------------------------------------------------------------
    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """BPR or sampled-softmax loss, propagating the graph once for the whole step."""
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        self._step.nodes = self.propagate()
        try:
            if self.objective == "softmax":
                return super().compute_loss(inputs, training=training)
            if self.objective == "full_softmax":
                return self._full_softmax_loss(features, self._step.nodes)
            return self._bpr_loss(features, self._step.nodes)
        finally:
            self._step.nodes = None

    def _bpr_loss(self, features, nodes: tf.Tensor) -> tf.Tensor:
        users = self._rows(features, self.user_key, self.user_lookup)
        rows = [
            users,
            self.num_user_rows + self._rows(features, self.item_key, self.item_lookup),
            self.num_user_rows + self._rows(features, self.negative_key, self.item_lookup),
        ]
        user, positive, negative = (tf.gather(nodes, r) for r in rows)
        difference = tf.reduce_sum(user * positive, axis=1) - tf.reduce_sum(user * negative, axis=1)
        loss = tf.reduce_sum(tf.nn.softplus(-difference))
        if self.l2:
            ego = tf.gather(self.ego_embeddings, tf.concat(rows, axis=0))
            loss += 0.5 * self.l2 * tf.reduce_sum(tf.square(ego))
        return self.replica_loss(loss, tf.shape(users)[0])

    def _full_softmax_loss(self, features, nodes: tf.Tensor) -> tf.Tensor:
        """Cross-entropy of each (user, item) pair over every item row (the catalogue is propagated anyway)."""
        users = self._rows(features, self.user_key, self.user_lookup)
        items = self._rows(features, self.item_key, self.item_lookup)
        logits = tf.matmul(tf.gather(nodes, users), nodes[self.num_user_rows :], transpose_b=True) / self.temperature
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=items, logits=logits))
        if self.l2:
            ego = tf.gather(self.ego_embeddings, tf.concat([users, self.num_user_rows + items], axis=0))
            loss += 0.5 * self.l2 * tf.reduce_sum(tf.square(ego))
        return self.replica_loss(loss, tf.shape(users)[0])

    # -- serving -------------------------------------------------------------------------------------
    def final_embeddings(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(user table [user rows, d], item table [item rows, d])`` in lookup-index order (one propagation)."""
        nodes = self.propagate()
        return nodes[: self.num_user_rows], nodes[self.num_user_rows :]

    def catalogue(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(raw ids of the spec's known items, their final embeddings)``: what ``recommend`` ranks."""
        ids = tf.constant(np.asarray(self.spec[self.item_key].vocabulary))
        return ids, self.compute_candidate_embeddings({self.item_key: ids})

    def recommend(self, inputs, k: int = 10, exclude: Any = None) -> Tuple[tf.Tensor, tf.Tensor]:
        """``RetrievalModel.recommend`` over the known items, propagating the graph once per call."""
        self._step.nodes = self.propagate()
        try:
            return super().recommend(inputs, k=k, exclude=exclude)
        finally:
            self._step.nodes = None

    def export_towers(self) -> Tuple[IdTower, IdTower]:
        """(query tower, candidate tower): raw id -> final embedding, from a frozen table.

        The graph is propagated once; the towers hold no graph and no trainable weight, so
        they serve like any factorised model's towers (e.g. behind a ScaNN index).
        """
        users, items = self.final_embeddings()
        towers = []
        for key, table, name in ((self.user_key, users, "query_tower"), (self.item_key, items, "candidate_tower")):
            tower = IdTower(self.spec, key, table.shape[0], self.embedding_dim, name=name)
            tower.table.assign(table)
            towers.append(tower)
        return towers[0], towers[1]


def _lookup(spec: FeatureSpec, key: str, ids) -> np.ndarray:
    """Lookup indices (int64 numpy) of raw ids of ``key``."""
    return np.asarray(spec.lookup_layer(key)(tf.constant(np.asarray(ids))), dtype=np.int64).reshape(-1)
