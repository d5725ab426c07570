"""Two-Tower retrieval (YouTube DNN / TFRS style) on raw user and item features.

The query tower embeds the user's id, profile features and recent history (mean-pooled
item embeddings); the candidate tower embeds the item's id, genres, year and title text
(``TextVectorization`` tokens, mean-pooled). Each tower concatenates its feature
embeddings (``FeatureEmbedding``) and maps them with an ``MLP`` into a shared space,
optionally L2-normalised. Training is TFRS's in-batch softmax (``RetrievalModel``): global
negatives across replicas, accidental hits masked by id, logQ correction from each
candidate's in-batch sampling probability, optional in-batch hard negatives and a
softmax temperature.

Ids unseen in training fall into the spec's OOV buckets, so a new user or item with known
features still gets a useful embedding: its features carry it.

Example::

    model = TwoTower(spec, query_features=["user_id", "age", "history"],
                     candidate_features=["item_id", "genres", "title"], temperature=0.05)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(train_batches, epochs=10)     # batches carry "candidate_sampling_probability" (logQ)
    user_vectors = model(user_features)                    # [users, dim], float32
    model.index_candidates(item_features)
    item_ids, scores = model.recommend(user_features, k=10)
"""

from typing import Optional, Sequence, Tuple, Union

import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import PACKAGE, export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.layers.mlp import MLP
from tfrecs.models.base import Features, RetrievalModel, require_inputs, retrieval_task

Units = Union[Sequence[int], str, int]
SAMPLING_PROBABILITY = "candidate_sampling_probability"


def parse_units(units: Units, name: str) -> Tuple[int, ...]:
    """``(128, 64)`` or ``"128,64"`` -> ``(128, 64)``; one int ``64`` -> ``(64,)``.

    Raises:
        ValueError: empty, or not positive integers; names the argument.
    """
    if isinstance(units, int):
        units = (units,)
    try:
        parsed = tuple(int(u) for u in (units.replace("-", ",").split(",") if isinstance(units, str) else units))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be layer sizes like (128, 64) or '128,64', got {units!r}") from None
    if not parsed or min(parsed) < 1:
        raise ValueError(f"{name} must be one or more positive layer sizes, got {units!r}")
    return parsed


@tf_keras.saving.register_keras_serializable(package=PACKAGE)
class Tower(ConfigFromInit, tf_keras.layers.Layer):
    """Raw features -> concatenated feature embeddings -> MLP -> (optionally) unit vectors.

    Internal to ``TwoTower`` (serializable, so a saved model reloads it as it was).

    Args:
        spec: fitted ``FeatureSpec`` holding ``features``.
        features: feature names the tower reads.
        units: MLP sizes; the last one is the output size (a linear layer).
        embedding_dim, dropout, embedding_l2, kernel_l2, l2_normalize: see ``TwoTower``.
        role: ``"query"`` or ``"candidate"``, for layer names and error messages.

    Raises:
        ValueError: no feature.
        MissingInputError: (at call) the batch lacks a feature the tower reads.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        features: Sequence[str],
        units: Units,
        embedding_dim: int,
        dropout: float = 0.0,
        embedding_l2: float = 0.0,
        kernel_l2: float = 0.0,
        l2_normalize: bool = True,
        role: str = "query",
        **kwargs,
    ):
        kwargs.setdefault("name", f"{role}_tower")
        super().__init__(**kwargs)
        if not features:
            raise ValueError(f"the {role} tower needs at least one feature")
        self.spec = FeatureSpec.coerce(spec)
        self.role = role
        self.features = tuple(features)
        self.units = parse_units(units, f"{role}_units")
        self.embedding_dim = int(embedding_dim)
        self.dropout, self.embedding_l2, self.kernel_l2 = dropout, embedding_l2, kernel_l2
        self.l2_normalize = l2_normalize
        regularizer = tf_keras.regularizers.l2(embedding_l2) if embedding_l2 else None
        self.embedding = FeatureEmbedding(
            self.spec,
            self.embedding_dim,
            features=self.features,
            embeddings_regularizer=regularizer,
            name=f"{role}_features",
        )
        self.mlp = MLP(list(self.units[:-1]), dropout=dropout, l2=kernel_l2, output_units=self.units[-1])
        self.output_dim = self.units[-1]

    def call(self, features: Features, training: Optional[bool] = None) -> tf.Tensor:
        require_inputs(
            f"TwoTower {self.role} tower",
            features,
            sorted(self.features),
            how="Pass every feature the tower was built with (query_features / candidate_features).",
        )
        x = self.mlp(self.embedding.concatenated(features), training=training)
        x = tf.cast(x, tf.float32)
        return tf.math.l2_normalize(x, axis=-1) if self.l2_normalize else x


@export("tfrecs.models.TwoTower", name="two_tower")
class TwoTower(RetrievalModel):
    """Two-Tower retrieval model on raw features (see the module docstring).

    Defaults are the ones tuned on ML-100K random-full (``benchmarks/retrieval_quality.py``).

    Args:
        spec: fitted ``FeatureSpec`` (training split only) with every tower feature.
        query_features: features of the query (user) tower, e.g. ``user_id``, ``age``,
            ``gender``, ``occupation``, ``history`` (a sequence of recent item ids).
        candidate_features: features of the candidate (item) tower, e.g. ``item_id``,
            ``genres``, ``release_year``, ``title``.
        embedding_dim: size of every feature embedding inside the towers.
        query_units, candidate_units: MLP layer sizes of each tower; the last size is the
            shared embedding size and must agree between the towers (``"128,64"`` accepted).
        l2_normalize: L2-normalise both towers' outputs (cosine scores).
        temperature: softmax temperature (divides the scores; ``None``: 1).
        dropout: dropout after each hidden layer.
        embedding_l2: L2 penalty on the feature embedding tables.
        kernel_l2: L2 penalty on the MLP kernels.
        logq_correction: subtract each candidate's log sampling probability from its in-batch
            scores. ON by default (without it the in-batch softmax falls below popularity on
            ML-100K): training batches must then carry ``sampling_probability_key``, e.g. from
            ``tfrecs.pipelines.add_sampling_probability``; pass ``logq_correction=False`` to
            train on plain (query, candidate) batches.
        num_hard_negatives: keep only this many hardest in-batch negatives (``None``: all).
        cross_replica_negatives: negatives from every replica's batch.
        candidate_id_key: candidate id feature, for accidental-hit masking and ``recommend``.
        sampling_probability_key: feature with each candidate's sampling probability (logQ;
            stored as ``None`` when ``logq_correction=False``).
        **kwargs: passed to ``RetrievalModel`` / Keras (e.g. ``name``).

    Raises:
        ValueError: the towers' output sizes differ, a feature is not in the spec, or a
            tower has no features.
        MissingInputError: (in training) logQ is on and the batch has no sampling
            probabilities, or (any call) a tower feature is missing from the batch.

    Example::

        model = TwoTower(spec, ["user_id", "history"], ["item_id", "genres"], logq_correction=False)
        model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
        model.fit(pairs, epochs=3)                     # {"user_id", "history", "item_id", "genres"}
        model.index_candidates(items)
        item_ids, scores = model.recommend(users, k=10, exclude=seen_items)
    """

    def __init__(
        self,
        spec: FeatureSpec,
        query_features: Sequence[str],
        candidate_features: Sequence[str],
        embedding_dim: int = 64,
        query_units: Units = (128, 64),
        candidate_units: Units = (128, 64),
        l2_normalize: bool = True,
        temperature: Optional[float] = 0.05,
        dropout: float = 0.3,
        embedding_l2: float = 0.0,
        kernel_l2: float = 0.0,
        logq_correction: bool = True,
        num_hard_negatives: Optional[int] = None,
        cross_replica_negatives: bool = True,
        candidate_id_key: Optional[str] = "item_id",
        sampling_probability_key: Optional[str] = SAMPLING_PROBABILITY,
        **kwargs,
    ):
        spec = FeatureSpec.coerce(spec)
        query_units = parse_units(query_units, "query_units")
        candidate_units = parse_units(candidate_units, "candidate_units")
        if query_units[-1] != candidate_units[-1]:
            raise ValueError(
                f"the towers must end in the same embedding size: query_units ends in {query_units[-1]}, "
                f"candidate_units ends in {candidate_units[-1]}"
            )
        unknown = [name for name in list(query_features) + list(candidate_features) if name not in spec]
        if unknown:
            raise ValueError(f"TwoTower: feature(s) {unknown} are not in the FeatureSpec (has {spec.names})")
        task = retrieval_task(temperature=temperature, num_hard_negatives=num_hard_negatives)
        super().__init__(
            task=task,
            candidate_id_key=candidate_id_key,
            sampling_probability_key=sampling_probability_key if logq_correction else None,
            cross_replica_negatives=cross_replica_negatives,
            remove_accidental_hits=candidate_id_key is not None,
            **kwargs,
        )
        self.spec = spec
        self.query_features = list(query_features)
        self.candidate_features = list(candidate_features)
        self.embedding_dim = int(embedding_dim)
        self.query_units, self.candidate_units = query_units, candidate_units
        self.l2_normalize, self.temperature, self.dropout = l2_normalize, temperature, dropout
        self.embedding_l2, self.kernel_l2 = embedding_l2, kernel_l2
        self.logq_correction = bool(logq_correction)
        self.num_hard_negatives = num_hard_negatives
        common = dict(
            embedding_dim=self.embedding_dim,
            dropout=dropout,
            embedding_l2=embedding_l2,
            kernel_l2=kernel_l2,
            l2_normalize=l2_normalize,
        )
        self.query_tower = Tower(spec, self.query_features, query_units, role="query", **common)
        self.candidate_tower = Tower(spec, self.candidate_features, candidate_units, role="candidate", **common)

    @property
    def output_dim(self) -> int:
        """Size of the shared query / candidate embedding space."""
        return self.query_tower.output_dim

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """In-batch softmax; with logQ on, the batch must carry the sampling probabilities.

        Raises:
            MissingInputError: ``logq_correction`` is on and ``sampling_probability_key`` is
                not in the batch.
        """
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        if self.logq_correction:
            require_inputs(
                "TwoTower (logq_correction=True)",
                features,
                [self.sampling_probability_key],
                how="Add each candidate's sampling probability with "
                "tfrecs.pipelines.add_sampling_probability(dataset, sampling_probabilities(counts)), "
                "or build the model with logq_correction=False.",
            )
        return super().compute_loss(inputs, training=training)
