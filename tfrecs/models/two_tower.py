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
                     candidate_features=["item_id", "genres", "title"],
                     hparams=TwoTowerHparams(temperature=0.05))
    model.compile(optimizer=tfrecs.training.make_optimizer("adam", 1e-3))
    model.fit(train_batches, epochs=10)
    user_vectors = model(user_features)                    # [users, dim], float32
    item_vectors = model.candidate_embeddings(item_features)
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import tensorflow as tf
import tf_keras

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.layers.mlp import MLP
from tfrecs.models.base import Features, RetrievalModel, retrieval_task
from tfrecs.core.registration import export

Units = Union[Sequence[int], str]


@dataclass
class TwoTowerHparams:
    """Two-Tower hyper-parameters (defaults: tuned on ML-100K random-full, see benchmarks/).

    Attributes:
        embedding_dim: size of every feature embedding inside the towers.
        query_units, candidate_units: MLP layer sizes of each tower; the last size is the
            shared embedding size and must agree between the towers. ``"128,64"`` strings
            (from ``--set``) are accepted.
        l2_normalize: L2-normalise both towers' outputs (cosine scores).
        temperature: softmax temperature (divides the scores; ``None``: 1).
        dropout: dropout after each hidden layer.
        embedding_l2: L2 penalty on the feature embedding tables.
        kernel_l2: L2 penalty on the MLP kernels.
        logq_correction: subtract log sampling probability from in-batch scores.
        num_hard_negatives: keep only this many hardest in-batch negatives (``None``: all).
        cross_replica_negatives: negatives from every replica's batch.
        history_length: most recent training items in a user's history feature.
        learning_rate, batch_size, epochs, patience: training (recipe) settings.
    """

    embedding_dim: int = 64
    query_units: Units = (128, 64)
    candidate_units: Units = (128, 64)
    l2_normalize: bool = True
    temperature: Optional[float] = 0.05
    dropout: float = 0.3
    embedding_l2: float = 0.0
    kernel_l2: float = 0.0
    logq_correction: bool = True
    num_hard_negatives: Optional[int] = None
    cross_replica_negatives: bool = True
    history_length: int = 50
    learning_rate: float = 1e-3
    batch_size: int = 512
    epochs: int = 40
    patience: int = 3


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


class Tower(tf_keras.layers.Layer):
    """Raw features -> concatenated feature embeddings -> MLP -> (optionally) unit vectors.

    Args:
        spec: fitted ``FeatureSpec`` holding ``features``.
        features: feature names the tower reads.
        units: MLP sizes; the last one is the output size (a linear layer).
        embedding_dim, dropout, embedding_l2, kernel_l2, l2_normalize: see ``TwoTowerHparams``.
        role: ``"query"`` or ``"candidate"``, for error messages.
    """

    def __init__(self, spec: FeatureSpec, features: Sequence[str], units: Sequence[int], embedding_dim: int,
                 dropout: float = 0.0, embedding_l2: float = 0.0, kernel_l2: float = 0.0,
                 l2_normalize: bool = True, role: str = "query", **kwargs):
        super().__init__(name=f"{role}_tower", **kwargs)
        if not features:
            raise ValueError(f"the {role} tower needs at least one feature")
        self.role = role
        self.features = tuple(features)
        regularizer = tf_keras.regularizers.l2(embedding_l2) if embedding_l2 else None
        self.embedding = FeatureEmbedding(spec, embedding_dim, features=self.features,
                                          embeddings_regularizer=regularizer, name=f"{role}_features")
        self.mlp = MLP(list(units[:-1]), dropout=dropout, l2=kernel_l2, output_units=units[-1])
        self.l2_normalize = l2_normalize
        self.output_dim = int(units[-1])

    def call(self, features: Features, training: Optional[bool] = None) -> tf.Tensor:
        missing = sorted(name for name in self.features if name not in features)
        if missing:
            raise ValueError(f"TwoTower {self.role} tower: the batch is missing feature(s) {missing}; "
                             f"the tower reads {list(self.features)}, the batch has {sorted(features)}")
        x = self.mlp(self.embedding.concatenated(features), training=training)
        x = tf.cast(x, tf.float32)
        return tf.math.l2_normalize(x, axis=-1) if self.l2_normalize else x


@export("tfrecs.models.TwoTower", name="two_tower")
class TwoTower(RetrievalModel):
    """Two-Tower retrieval model on raw features (see the module docstring).

    Args:
        spec: fitted ``FeatureSpec`` (training split only) with every tower feature.
        query_features: features of the query (user) tower, e.g. ``user_id``, ``age``,
            ``gender``, ``occupation``, ``history`` (a sequence of recent item ids).
        candidate_features: features of the candidate (item) tower, e.g. ``item_id``,
            ``genres``, ``release_year``, ``title``.
        hparams: ``TwoTowerHparams`` (default: its defaults).
        candidate_id_key: candidate id feature, for accidental-hit masking.
        sampling_probability_key: feature with each candidate's sampling probability
            (logQ; used when ``hparams.logq_correction``).

    Raises:
        ValueError: the towers' output sizes differ, a feature is not in the spec, or a
            tower has no features.

    Example::

        model = TwoTower(spec, ["user_id", "history"], ["item_id", "genres"])
        scores = model(users) @ tf.transpose(model.candidate_embeddings(items))
    """

    def __init__(self, spec: FeatureSpec, query_features: Sequence[str], candidate_features: Sequence[str],
                 hparams: Optional[TwoTowerHparams] = None, candidate_id_key: Optional[str] = "item_id",
                 sampling_probability_key: Optional[str] = "candidate_sampling_probability", **kwargs):
        hparams = hparams or TwoTowerHparams()
        query_units = parse_units(hparams.query_units, "query_units")
        candidate_units = parse_units(hparams.candidate_units, "candidate_units")
        if query_units[-1] != candidate_units[-1]:
            raise ValueError(
                f"the towers must end in the same embedding size: query_units ends in {query_units[-1]}, "
                f"candidate_units ends in {candidate_units[-1]}")
        unknown = [name for name in list(query_features) + list(candidate_features) if name not in spec]
        if unknown:
            raise ValueError(f"TwoTower: feature(s) {unknown} are not in the FeatureSpec (has {spec.names})")
        task = retrieval_task(temperature=hparams.temperature, num_hard_negatives=hparams.num_hard_negatives)
        super().__init__(
            task=task,
            candidate_id_key=candidate_id_key,
            sampling_probability_key=sampling_probability_key if hparams.logq_correction else None,
            cross_replica_negatives=hparams.cross_replica_negatives,
            remove_accidental_hits=candidate_id_key is not None,
            **kwargs,
        )
        self.hparams = hparams
        self.spec = spec
        self.query_features = list(query_features)
        self.candidate_features = list(candidate_features)
        common = dict(embedding_dim=hparams.embedding_dim, dropout=hparams.dropout,
                      embedding_l2=hparams.embedding_l2, kernel_l2=hparams.kernel_l2,
                      l2_normalize=hparams.l2_normalize)
        self.query_tower = Tower(spec, self.query_features, query_units, role="query", **common)
        self.candidate_tower = Tower(spec, self.candidate_features, candidate_units, role="candidate", **common)

    @property
    def embedding_dim(self) -> int:
        """Size of the shared query / candidate embedding space."""
        return self.query_tower.output_dim
