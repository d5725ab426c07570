"""PinSage (Ying et al., KDD 2018): graph convolutions over random-walk neighbourhoods.

Each item node starts from its id embedding plus a projection of its features (genres); ``K``
convolutions with importance pooling follow, each one: transform the neighbours
(``relu(Q h + q)``), take their mean weighted by the neighbours' normalised random-walk visit
counts, concatenate it with the node's own vector, ``relu(W [h, n] + w)``, L2-normalise. A
final dense layer and L2 normalisation give the candidate vector. The neighbourhoods are
sampled, not the whole graph: hop ``k`` holds ``N ** k`` nodes per item, so a step costs the
same whatever the graph's size. The query (user) tower pools, by the same importance weights,
the items that walks from the user visit, concatenated with the user's id embedding.

Loss: the TFRS Retrieval task's in-batch sampled softmax (logQ-corrected, accidental hits
masked by id) plus, when the batch carries ``hard_negative_item_id``, each row's hard negatives
(items ranked by the user's walk visits, drawn by ``tfrecs.pipelines.PinSageData``); a padded
hard negative is masked, which is how the pipeline's curriculum (one more hard negative per
epoch) reaches the loss.

Where the neighbourhoods come from: training batches carry freshly sampled ones (the
``tf.data`` producer: ``item_neighbors_k`` / ``item_neighbor_weights_k``, ``user_neighbors``
/ ``user_neighbor_weights``, raw ids); anything else (hard negatives, evaluation, ``recommend``,
the offline ``embed_items`` job, exports) reads the model's frozen neighbourhood tables, set by
``from_interactions`` (many walks per node) and kept, like the item features, in
non-trainable weights: interaction data is not configuration.

Example::

    data = PinSageData.from_split(split)
    model = PinSage.from_interactions(data.spec, train.interactions["user_id"], train.interactions["item_id"],
                                      item_ids=data.item_ids, item_features=data.item_features)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(data.batches(512, num_layers=model.num_layers, num_user_neighbors=model.num_user_neighbors,
                           num_hard_negatives=2), epochs=10)
    items = model.embed_items()                       # offline: every item's vector, in batches
    query_tower, candidate_tower = model.export_towers()
"""

from typing import List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core import cross_replica
from tfrecs.core.errors import InputError
from tfrecs.core.precision import to_float32
from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.data.random_walks import (
    HARD_NEGATIVES,
    USER_NEIGHBOR_WEIGHTS,
    USER_NEIGHBORS,
    BipartiteGraph,
    RandomWalkSampler,
    hop_keys,
)
from tfrecs.models.base import RetrievalModel, accidental_hit_mask, float32_policy, require_inputs, summed
from tfrecs.models.lightgcn import IdTower

SAMPLING_PROBABILITY = "candidate_sampling_probability"


@export("tfrecs.models.PinSage", name="pinsage")
class PinSage(RetrievalModel):
    """PinSage retrieval model on raw user / item ids (see the module docstring).

    Build it with ``PinSage.from_interactions(spec, user_ids, item_ids, ...)`` (which samples
    the frozen neighbourhood tables), or construct it and call ``set_neighborhoods`` /
    ``set_item_features``.

    Args:
        spec: a fitted ``FeatureSpec`` with categorical ``user_key`` and ``item_key``.
        num_item_features: width of the item feature vectors (genre multi-hot; 0: ids only).
        num_neighbors: ``N``, neighbours per item node and hop.
        num_user_neighbors: items in a user's neighbourhood.
        num_layers: graph convolutions ``K`` (item neighbourhoods of ``K`` hops).
        embedding_dim: size of the id embeddings, hidden layers and output vectors.
        temperature: softmax temperature (the vectors are unit length).
        logq_correction: subtract ``log p`` of each in-batch candidate (the batch must carry
            ``candidate_sampling_probability``); hard negatives count as uniform draws.
        user_key, item_key: raw id features of the batch.
        **kwargs: passed to ``RetrievalModel``.

    Raises:
        KeyError: ``user_key`` / ``item_key`` not in the spec.
        InputError: a size below its minimum (names the argument).

    Example::

        model = PinSage.from_interactions(spec, users, items, item_ids=catalogue, item_features=genres,
                                          num_layers=2, num_neighbors=10)
        ids, scores = model.recommend({"user_id": tf.constant(["196"])}, k=10)
    """

    def __init__(
        self,
        spec: FeatureSpec,
        num_item_features: int = 0,
        num_neighbors: int = 10,
        num_user_neighbors: int = 50,
        num_layers: int = 2,
        embedding_dim: int = 64,
        temperature: float = 0.1,
        logq_correction: bool = True,
        user_key: str = "user_id",
        item_key: str = "item_id",
        **kwargs,
    ):
        for name, value, low in (
            ("num_item_features", num_item_features, 0),
            ("num_neighbors", num_neighbors, 1),
            ("num_user_neighbors", num_user_neighbors, 1),
            ("num_layers", num_layers, 1),
            ("embedding_dim", embedding_dim, 1),
        ):
            if int(value) < low:
                raise InputError(f"{name} must be >= {low}, got {value}")
        if not temperature or float(temperature) <= 0:
            raise InputError(f"temperature must be > 0, got {temperature}")
        kwargs.setdefault("candidate_id_key", item_key)
        if logq_correction:
            kwargs.setdefault("sampling_probability_key", SAMPLING_PROBABILITY)
        super().__init__(temperature=temperature, **kwargs)
        spec = FeatureSpec.coerce(spec)
        self.spec, self.user_key, self.item_key = spec, user_key, item_key
        self.num_item_features, self.num_neighbors = int(num_item_features), int(num_neighbors)
        self.num_user_neighbors, self.num_layers = int(num_user_neighbors), int(num_layers)
        self.embedding_dim, self.temperature, self.logq_correction = int(embedding_dim), temperature, logq_correction
        self.num_user_rows = spec[user_key].vocabulary_size
        self.num_item_rows = spec[item_key].vocabulary_size
        self.user_lookup = spec.lookup_layer(user_key)
        self.item_lookup = spec.lookup_layer(item_key)
        init = tf_keras.initializers.RandomNormal(stddev=0.1, seed=0)
        d = self.embedding_dim
        self.user_embeddings = self.add_weight(name="user_embeddings", shape=(self.num_user_rows, d), initializer=init)
        self.item_embeddings = self.add_weight(name="item_embeddings", shape=(self.num_item_rows, d), initializer=init)

        def table(name, shape, dtype):
            return self.add_weight(name=name, shape=shape, dtype=dtype, initializer="zeros", trainable=False)

        self.item_feature_table = table("item_features", (self.num_item_rows, self.num_item_features), tf.float32)
        self.item_neighbor_table = table("item_neighbors", (self.num_item_rows, self.num_neighbors), tf.int64)
        self.item_weight_table = table("item_neighbor_weights", (self.num_item_rows, self.num_neighbors), tf.float32)
        self.user_neighbor_table = table("user_neighbors", (self.num_user_rows, self.num_user_neighbors), tf.int64)
        self.user_weight_table = table(
            "user_neighbor_weights", (self.num_user_rows, self.num_user_neighbors), tf.float32
        )
        dense = tf_keras.layers.Dense
        self.feature_projection = dense(d, use_bias=False, name="feature_projection")
        self.neighbor_transforms = [dense(d, activation="relu", name=f"neighbor_{k}") for k in range(num_layers)]
        self.node_updates = [dense(d, activation="relu", name=f"update_{k}") for k in range(num_layers)]
        self.item_output = dense(d, name="item_output")
        self.user_neighbor_transform = dense(d, activation="relu", name="user_neighbor")
        self.user_output = dense(d, name="user_output")

    # -- data: neighbourhoods and item features ------------------------------------------------------
    @classmethod
    def from_interactions(
        cls,
        spec: FeatureSpec,
        user_ids,
        item_ids,
        item_features: Optional[np.ndarray] = None,
        feature_item_ids=None,
        num_walks: int = 64,
        walk_length: int = 2,
        seed: int = 0,
        **kwargs,
    ) -> "PinSage":
        """A model whose frozen neighbourhoods come from walks on the TRAINING interactions.

        Args:
            spec: as in the constructor.
            user_ids, item_ids: raw ids of the training interactions.
            item_features: ``[num items, F]`` float features of the items ``feature_item_ids``.
            feature_item_ids: raw ids of ``item_features``' rows.
            num_walks, walk_length, seed: the walks that rank each node's neighbours.
            **kwargs: other constructor keywords.

        Raises:
            EmptyGraphError: no interaction.
            InputError: ``item_features`` without ``feature_item_ids`` or of another length.
        """
        spec = FeatureSpec.coerce(spec)
        width = 0 if item_features is None else int(np.asarray(item_features).shape[1])
        asked = kwargs.pop("num_item_features", width)
        if int(asked) != width:
            raise InputError(f"num_item_features={asked} but item_features has {width} columns; leave it out")
        model = cls(spec, num_item_features=width, **kwargs)
        model.set_neighborhoods(user_ids, item_ids, num_walks=num_walks, walk_length=walk_length, seed=seed)
        if item_features is not None:
            model.set_item_features(feature_item_ids, item_features)
        return model

    def _rows_of(self, key: str, ids) -> np.ndarray:
        lookup = self.user_lookup if key == self.user_key else self.item_lookup
        return np.asarray(lookup(tf.constant(np.asarray(ids))), np.int64).reshape(-1)

    def set_neighborhoods(self, user_ids, item_ids, num_walks: int = 64, walk_length: int = 2, seed: int = 0):
        """Samples every user's and item's neighbourhood from the interactions (raw ids) into the
        frozen tables that serving, evaluation and the offline embedding job read.

        Raises:
            EmptyGraphError: no interaction.
            InputError: ``num_walks`` or ``walk_length`` below 1.
        """
        users, items = self._rows_of(self.user_key, user_ids), self._rows_of(self.item_key, item_ids)
        graph = BipartiteGraph(users, items, self.num_user_rows, self.num_item_rows)
        sampler = RandomWalkSampler(graph, num_walks, walk_length, self.num_neighbors, seed=seed)
        neighbors, weights = sampler.item_neighborhoods(np.arange(self.num_item_rows), seed=[seed, 1])
        self.item_neighbor_table.assign(np.maximum(neighbors, 0))
        self.item_weight_table.assign(weights)
        neighbors, weights = sampler.user_neighborhoods(
            np.arange(self.num_user_rows), seed=[seed, 2], num_neighbors=self.num_user_neighbors
        )
        self.user_neighbor_table.assign(np.maximum(neighbors, 0))
        self.user_weight_table.assign(weights)

    def set_item_features(self, item_ids, features) -> None:
        """Sets the item node features: row ``n`` of ``features`` belongs to raw id ``item_ids[n]``.

        Raises:
            InputError: ``item_ids`` missing, lengths differ, or the width is not ``num_item_features``.
        """
        features = np.asarray(features, np.float32)
        if item_ids is None:
            raise InputError("feature_item_ids / item_ids must name the item of each item_features row")
        if features.ndim != 2 or features.shape[1] != self.num_item_features:
            raise InputError(
                f"item_features must be [items, {self.num_item_features}] (num_item_features), got {features.shape}"
            )
        rows = self._rows_of(self.item_key, item_ids)
        if len(rows) != len(features):
            raise InputError(f"item_ids has {len(rows)} ids but item_features has {len(features)} rows")
        table = np.zeros((self.num_item_rows, self.num_item_features), np.float32)
        table[rows] = features
        self.item_feature_table.assign(table)

    # -- towers --------------------------------------------------------------------------------------------
    def _input_vectors(self, rows: tf.Tensor) -> tf.Tensor:
        """Layer-0 vectors of item rows: id embedding + projected features."""
        vectors = tf.gather(self.item_embeddings, rows)
        if self.num_item_features:
            vectors += self.feature_projection(tf.gather(self.item_feature_table, rows))
        return vectors

    def _item_hops(
        self, rows: tf.Tensor, features: Optional[Mapping[str, tf.Tensor]]
    ) -> List[Tuple[tf.Tensor, tf.Tensor]]:
        """``[(rows [B, N ** k], weights [B, N ** k]) for k = 1..K]``: the batch's sampled hops, else the tables'."""
        hops = []
        frontier = rows
        for hop in range(1, self.num_layers + 1):
            ids_key, weights_key = hop_keys(hop)
            if features is not None and ids_key in features and weights_key in features:
                neighbors = tf.cast(self.item_lookup(features[ids_key]), tf.int64)
                weights = tf.cast(features[weights_key], tf.float32)
            else:
                batch = tf.shape(rows)[0]
                flat = tf.reshape(frontier, [-1])
                neighbors = tf.reshape(tf.gather(self.item_neighbor_table, flat), [batch, -1])
                weights = tf.reshape(tf.gather(self.item_weight_table, flat), [batch, -1])
                if hops:  # a padded parent (weight 0) has no children
                    parent = tf.repeat(hops[-1][1] > 0, self.num_neighbors, axis=1)
                    weights = tf.where(parent, weights, 0.0)
            hops.append((neighbors, weights))
            frontier = neighbors
        return hops

    @staticmethod
    def _pool(neighbors: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        """Importance pooling: the weighted mean of ``[M, N, d]`` vectors by ``[M, N]`` weights."""
        total = tf.reduce_sum(weights, axis=1, keepdims=True)
        return tf.reduce_sum(neighbors * weights[:, :, None], axis=1) / tf.maximum(total, 1e-9)

    def _convolve(self, rows: tf.Tensor, hops) -> tf.Tensor:
        d, n = self.embedding_dim, self.num_neighbors
        own = self._input_vectors(tf.reshape(rows, [-1]))
        states = [own]  # hop 0: [B, d]
        states += [tf.reshape(self._input_vectors(tf.reshape(r, [-1])), [-1, d]) for r, _ in hops]
        weights = [tf.reshape(w, [-1, n]) for _, w in hops]  # hop k+1's weights per hop-k node
        for layer in range(self.num_layers):
            updated = []
            for hop in range(self.num_layers - layer):
                neighbors = tf.reshape(self.neighbor_transforms[layer](states[hop + 1]), [-1, n, d])
                pooled = self._pool(neighbors, weights[hop])
                vector = self.node_updates[layer](tf.concat([states[hop], pooled], axis=1))
                updated.append(tf.math.l2_normalize(vector, axis=1))
            states = updated
        # the node's own input vector skips the convolutions into the output layer
        return tf.math.l2_normalize(self.item_output(tf.concat([states[0], own], axis=1)), axis=1)

    def compute_candidate_embeddings(self, features, training: bool = False) -> tf.Tensor:
        require_inputs("PinSage", features, [self.item_key], how="PinSage's candidate tower reads raw item ids.")
        rows = tf.cast(self.item_lookup(features[self.item_key]), tf.int64)
        return self._convolve(rows, self._item_hops(rows, features))

    def embed_item_rows(self, rows: tf.Tensor) -> tf.Tensor:
        """Candidate vectors of item lookup rows over the frozen neighbourhood tables."""
        rows = tf.cast(rows, tf.int64)
        return self._convolve(rows, self._item_hops(rows, None))

    def compute_query_embeddings(self, features, training: bool = False) -> tf.Tensor:
        require_inputs("PinSage", features, [self.user_key], how="PinSage's query tower reads raw user ids.")
        rows = tf.cast(self.user_lookup(features[self.user_key]), tf.int64)
        if USER_NEIGHBORS in features and USER_NEIGHBOR_WEIGHTS in features:
            neighbors = tf.cast(self.item_lookup(features[USER_NEIGHBORS]), tf.int64)
            return self._user_vectors(rows, neighbors, tf.cast(features[USER_NEIGHBOR_WEIGHTS], tf.float32))
        return self._user_vectors(rows)

    def _user_vectors(self, rows: tf.Tensor, neighbors=None, weights=None) -> tf.Tensor:
        """Query vectors of user rows: own embedding + importance-pooled neighbour items."""
        rows = tf.cast(rows, tf.int64)
        if neighbors is None:
            neighbors, weights = tf.gather(self.user_neighbor_table, rows), tf.gather(self.user_weight_table, rows)
        width = tf.shape(neighbors)[1]
        items = self._input_vectors(tf.reshape(neighbors, [-1]))
        transformed = tf.reshape(self.user_neighbor_transform(items), [-1, width, self.embedding_dim])
        pooled = self._pool(transformed, weights)
        own = tf.gather(self.user_embeddings, rows)
        return tf.math.l2_normalize(self.user_output(tf.concat([own, pooled], axis=1)), axis=1)

    # -- loss: in-batch softmax + hard negatives ------------------------------------------------------
    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """In-batch sampled softmax (TFRS Retrieval) with each row's (unpadded) hard negatives appended."""
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        if HARD_NEGATIVES not in features:
            return super().compute_loss(inputs, training=training)
        queries = to_float32(self.compute_query_embeddings(features, training=training))
        candidates = to_float32(self.compute_candidate_embeddings(features, training=training))
        local_candidates = candidates
        ids = tf.cast(self.item_lookup(features[self.item_key]), tf.int64)
        local_ids = ids
        probabilities = (
            tf.cast(features[self.sampling_probability_key], tf.float32) if self.sampling_probability_key else None
        )
        if self.cross_replica_negatives:
            candidates, ids, probabilities = cross_replica.gather_candidates(candidates, ids, probabilities)
        raw_hard = features[HARD_NEGATIVES]
        hard_count = tf.shape(raw_hard)[1]
        flat_raw = tf.reshape(raw_hard, [-1])
        padding = tf.constant("", tf.string) if raw_hard.dtype == tf.string else tf.cast(-1, raw_hard.dtype)
        hard_rows = tf.cast(self.item_lookup(flat_raw), tf.int64)
        hard_vectors = to_float32(self.embed_item_rows(hard_rows))
        num_queries, num_in_batch = tf.shape(queries)[0], tf.shape(candidates)[0]
        owner = tf.range(tf.size(flat_raw)) // hard_count
        own_hard = tf.equal(owner[None, :], tf.range(num_queries)[:, None]) & tf.not_equal(flat_raw, padding)[None, :]
        all_ids = tf.concat([ids, hard_rows], axis=0)
        mask = accidental_hit_mask(all_ids, num_queries)
        mask &= tf.concat([tf.ones([num_queries, num_in_batch], tf.bool), own_hard], axis=1)
        if probabilities is not None:
            uniform = tf.fill([tf.size(flat_raw)], 1.0 / float(self.num_item_rows))
            probabilities = tf.concat([probabilities, uniform], axis=0)
        with float32_policy():
            loss = self.task(
                queries,
                tf.concat([candidates, hard_vectors], axis=0),
                candidate_sampling_probability=probabilities,
                compute_metrics=False,
                compute_batch_metrics=True,
                score_mask=mask,
            )
        if not training or self.compute_metrics_in_training:
            for metric in self.task.factorized_metrics:
                metric.update_state(queries, local_candidates, true_candidate_ids=local_ids)
        return self.replica_loss(summed(loss), cross_replica.batch_size(queries))

    # -- offline embedding and serving ----------------------------------------------------------------
    def embed_items(self, batch_size: int = 1024) -> tf.Tensor:
        """The offline job: every item row's final vector (``[item rows, d]``, lookup-index order),
        computed in batches over the frozen neighbourhoods.

        Raises:
            InputError: ``batch_size < 1``.
        """
        return self._embed_all(self.num_item_rows, self.embed_item_rows, batch_size)

    def embed_users(self, batch_size: int = 1024) -> tf.Tensor:
        """Every user row's query vector (``[user rows, d]``, lookup-index order), in batches."""
        return self._embed_all(self.num_user_rows, self._user_vectors, batch_size)

    @staticmethod
    def _embed_all(count: int, embed, batch_size: int) -> tf.Tensor:
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        chunks = [
            to_float32(embed(tf.range(start, min(start + int(batch_size), count), dtype=tf.int64)))
            for start in range(0, count, int(batch_size))
        ]
        return tf.concat(chunks, axis=0)

    def catalogue(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(raw ids of the spec's known items, their vectors)``: what ``recommend`` ranks."""
        ids = tf.constant(np.asarray(self.spec[self.item_key].vocabulary))
        return ids, self.embed_item_rows(tf.cast(self.item_lookup(ids), tf.int64))

    def export_towers(self) -> Tuple[IdTower, IdTower]:
        """(query tower, candidate tower): raw id -> vector from tables the offline job fills.

        Every user and item is embedded once, in batches (``embed_users`` / ``embed_items``);
        the towers hold no graph and no trainable weight, so they serve behind a ScaNN or
        brute-force index like any factorised model's towers.
        """
        towers = []
        for key, table, name in (
            (self.user_key, self.embed_users(), "query_tower"),
            (self.item_key, self.embed_items(), "candidate_tower"),
        ):
            tower = IdTower(self.spec, key, table.shape[0], self.embedding_dim, name=name)
            tower.table.assign(table)
            towers.append(tower)
        return towers[0], towers[1]
