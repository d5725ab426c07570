"""NCF (He et al., WWW 2017): GMF, MLP and the fused NeuMF, as one pointwise ranking model.

* ``mode="gmf"``: ``logit = h . (p_u * q_i)`` (generalised matrix factorisation).
* ``mode="mlp"``: ``logit = h . MLP([p_u ; q_i])`` with its own embeddings.
* ``mode="neumf"``: ``logit = h . [p_u * q_i ; MLP([p'_u ; q'_i])]`` (separate embeddings).

Trained pointwise (sigmoid cross-entropy on a TFRS Ranking task) on positives and ``K``
sampled negatives. The paper's pre-training: train GMF and MLP, then
``NeuMF.from_pretrained(gmf, mlp, alpha)`` copies their embeddings and MLP and sets the
fused output layer to ``[alpha * h_gmf ; (1 - alpha) * h_mlp]``. NeuMF is not factorised:
``score_candidates`` scores every (user, item) pair of a user batch against a candidate set.

Models read RAW ids (the spec's lookups map unknown ids to the OOV row). ``GMF`` and
``NCFMLP`` are the two pre-training parts (``NeuMF`` with its mode fixed).

Example::

    spec = FeatureSpec([Feature("user_id", "categorical"), Feature("item_id", "categorical")])
    spec = spec.fit(joined_columns(split.train))
    model = NeuMF(spec, mode="neumf")
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(pointwise_batches, epochs=10)          # {"user_id", "item_id", "label"}
    scores = model.score_candidates(tf.constant(["196"]), tf.constant(item_ids))  # [1, num_items]
    ids, scores = model.recommend({"user_id": tf.constant(["196"])}, k=10)
"""

from typing import Any, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.layers.mlp import MLP
from tfrecs.models.base import RankingModel, excluded_positions, require_inputs

MODES = ("gmf", "mlp", "neumf")


@export("tfrecs.models.NeuMF", name="neumf")
class NeuMF(RankingModel):
    """GMF / MLP / NeuMF on raw user and item ids (see the module docstring).

    Args:
        spec: a fitted ``FeatureSpec`` with categorical ``user_key`` and ``item_key``.
        mode: ``"gmf"``, ``"mlp"`` or ``"neumf"``.
        gmf_dim: GMF embedding size (the paper's predictive factors).
        mlp_embedding_dim: MLP embedding size per side (its input is twice this).
        mlp_units: hidden layer sizes of the MLP tower (paper: 64 -> 32 -> 16 -> 8 with an
            input of 64, i.e. ``mlp_embedding_dim=32, mlp_units=(32, 16, 8)``).
        dropout: dropout in the MLP tower.
        l2: L2 penalty on the embeddings and MLP kernels.
        user_key, item_key, label_key: feature names of the batch (raw ids).
        **kwargs: passed to ``RankingModel``.

    Raises:
        ValueError: unknown ``mode`` or non-positive sizes.
        KeyError: ``user_key`` / ``item_key`` not in the spec.
        MissingInputError: (at call) the batch lacks ``user_key`` or ``item_key``.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        mode: str = "neumf",
        gmf_dim: int = 8,
        mlp_embedding_dim: int = 32,
        mlp_units: Sequence[int] = (32, 16, 8),
        dropout: float = 0.0,
        l2: float = 0.0,
        user_key: str = "user_id",
        item_key: str = "item_id",
        label_key: str = "label",
        **kwargs,
    ):
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not an NCF mode; choose one of {MODES}")
        if gmf_dim < 1 or mlp_embedding_dim < 1:
            raise ValueError(f"gmf_dim and mlp_embedding_dim must be >= 1, got {gmf_dim}, {mlp_embedding_dim}")
        kwargs.setdefault("label_keys", {"label": label_key})
        super().__init__(**kwargs)
        spec = FeatureSpec.coerce(spec)
        self.spec, self.mode = spec, mode
        self.user_key, self.item_key, self.label_key = user_key, item_key, label_key
        self.gmf_dim, self.mlp_embedding_dim = int(gmf_dim), int(mlp_embedding_dim)
        self.mlp_units = tuple(int(u) for u in np.atleast_1d(mlp_units))
        self.dropout, self.l2 = dropout, l2
        self.sizes = {key: spec[key].vocabulary_size for key in (user_key, item_key)}
        regularizer = tf_keras.regularizers.l2(l2) if l2 else None
        initializer = tf_keras.initializers.RandomNormal(stddev=0.01, seed=0)

        def embedding(key: str, dim: int, part: str) -> FeatureEmbedding:
            return FeatureEmbedding(
                spec,
                dim,
                features=[key],
                embeddings_regularizer=regularizer,
                embeddings_initializer=initializer,
                name=f"{part}_{key}_embedding",
            )

        self.gmf_embeddings = {}
        self.mlp_embeddings = {}
        if mode in ("gmf", "neumf"):
            self.gmf_embeddings = {key: embedding(key, self.gmf_dim, "gmf") for key in (user_key, item_key)}
        self.mlp = None
        if mode in ("mlp", "neumf"):
            self.mlp_embeddings = {key: embedding(key, self.mlp_embedding_dim, "mlp") for key in (user_key, item_key)}
            self.mlp = MLP(list(self.mlp_units), dropout=dropout, l2=l2, name="mlp_tower")
        self.head = tf_keras.layers.Dense(1, dtype="float32", kernel_initializer="lecun_uniform", name="prediction")

    def _side(self, features, key: str) -> Tuple[Optional[tf.Tensor], Optional[tf.Tensor]]:
        """(GMF vector, MLP vector) of one side's raw ids, ``None`` for a part the mode lacks."""
        require_inputs(type(self).__name__, features, [key], how="NCF models read raw user and item ids.")
        ids = {key: features[key]}
        gmf = self.gmf_embeddings[key](ids)[key] if self.gmf_embeddings else None
        mlp = self.mlp_embeddings[key](ids)[key] if self.mlp_embeddings else None
        return gmf, mlp

    def _logits(self, user, item, training: bool) -> tf.Tensor:
        """Logits of broadcast-compatible user / item vectors (``[..., d]`` -> ``[...]``)."""
        parts = []
        if user[0] is not None:
            parts.append(user[0] * item[0])
        if user[1] is not None:
            shape = tf.broadcast_dynamic_shape(tf.shape(user[1]), tf.shape(item[1]))
            pair = tf.concat([tf.broadcast_to(user[1], shape), tf.broadcast_to(item[1], shape)], axis=-1)
            parts.append(self.mlp(pair, training=training))
        return tf.squeeze(self.head(tf.concat(parts, axis=-1)), axis=-1)

    def call(self, features, training: bool = False) -> tf.Tensor:
        """``[batch]`` float32 logits of the (user, item) pairs of a batch."""
        return self._logits(self._side(features, self.user_key), self._side(features, self.item_key), training)

    def score_candidates(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
        """``[users, items]`` logits of every user against every candidate item (raw ids).

        Embeds each user and item once and scores the cross product (the model is not
        factorised, so every pair goes through the MLP). Keep ``users * items`` moderate.
        """
        user = self._side({self.user_key: user_ids}, self.user_key)
        item = self._side({self.item_key: item_ids}, self.item_key)
        user = tuple(None if v is None else v[:, None, :] for v in user)
        item = tuple(None if v is None else v[None, :, :] for v in item)
        return self._logits(user, item, training=False)

    # -- recommend ---------------------------------------------------------------------------
    def catalogue_ids(self) -> tf.Tensor:
        """Raw ids of the items ``recommend`` ranks: the spec's ``item_key`` vocabulary."""
        return tf.constant(np.asarray(self.spec[self.item_key].vocabulary))

    def recommend(
        self, inputs, k: int = 10, exclude: Any = None, users_per_chunk: int = 64
    ) -> Tuple[tf.Tensor, tf.Tensor]:
        """Top-``k`` raw item ids of the catalogue and their float32 logits per user.

        NeuMF is not factorised: every (user, item) pair goes through the network, in chunks
        of ``users_per_chunk`` users against the whole catalogue (``catalogue_ids``).

        Args:
            inputs: ``{user_key: raw user ids [B]}``.
            k: items per user (at most the catalogue size).
            exclude: raw item ids to leave out per user (list of lists, ragged or padded).
            users_per_chunk: users scored at once (memory ~ chunk * catalogue * MLP width).

        Returns:
            ``(item_ids [B, k], scores [B, k])``, best first.

        Raises:
            ValueError: ``k < 1``.
            MissingInputError: ``inputs`` lacks ``user_key``.

        Example::

            ids, scores = model.recommend({"user_id": tf.constant(["196", "7"])}, k=10, exclude=[["242"], []])
        """
        if k < 1:
            raise ValueError(f"recommend: k must be >= 1, got {k}")
        require_inputs(type(self).__name__, inputs, [self.user_key])
        users, items = tf.convert_to_tensor(inputs[self.user_key]), self.catalogue_ids()
        scores = tf.concat(
            [
                self.score_candidates(users[start : start + users_per_chunk], items)
                for start in range(0, int(tf.shape(users)[0]), users_per_chunk)
            ],
            axis=0,
        )
        scores = tf.cast(scores, tf.float32)
        if exclude is not None:
            scores = tf.where(excluded_positions(items, exclude, tf.shape(scores)[0]), -float("inf"), scores)
        top = tf.math.top_k(scores, k=min(int(k), int(items.shape[0])))
        return tf.gather(items, top.indices), top.values

    @classmethod
    def from_pretrained(cls, gmf: "NeuMF", mlp: "NeuMF", alpha: float = 0.5, **kwargs) -> "NeuMF":
        """The paper's fused NeuMF from a trained GMF and a trained MLP model.

        Copies both embedding sets and the MLP tower; the output layer becomes
        ``kernel = [alpha * h_gmf ; (1 - alpha) * h_mlp]`` and
        ``bias = alpha * b_gmf + (1 - alpha) * b_mlp``. Both models must be built (trained).

        Args:
            gmf, mlp: models of mode ``"gmf"`` and ``"mlp"`` (e.g. ``GMF`` and ``NCFMLP``) on the
                same spec and features.
            alpha: the paper's trade-off between the two pre-trained models.
            **kwargs: other constructor arguments of the fused model (e.g. ``l2``).

        Raises:
            ValueError: wrong modes, unbuilt models, different features / vocabularies, or a
                ``gmf_dim`` / ``mlp_embedding_dim`` / ``mlp_units`` in ``kwargs`` that does not
                match the pre-trained towers.
        """
        if gmf.mode != "gmf" or mlp.mode != "mlp":
            raise ValueError(
                f"from_pretrained needs a 'gmf' and an 'mlp' model, got modes {gmf.mode!r} and {mlp.mode!r}"
            )
        if not (gmf.built and mlp.built):
            raise ValueError("from_pretrained needs trained (built) GMF and MLP models")
        if (gmf.user_key, gmf.item_key, gmf.sizes) != (mlp.user_key, mlp.item_key, mlp.sizes):
            raise ValueError(f"GMF and MLP read different features or vocabularies: {gmf.sizes} vs {mlp.sizes}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        pretrained = {"gmf_dim": gmf.gmf_dim, "mlp_embedding_dim": mlp.mlp_embedding_dim, "mlp_units": mlp.mlp_units}
        for name, value in pretrained.items():
            if name in kwargs and tuple(np.atleast_1d(kwargs[name])) != tuple(np.atleast_1d(value)):
                raise ValueError(
                    f"{name}={kwargs[name]} does not match the pre-trained tower's {name}={value}: "
                    "the fused model reuses the pre-trained embeddings and MLP as they are"
                )
            kwargs[name] = value
        fused = NeuMF(gmf.spec, mode="neumf", user_key=gmf.user_key, item_key=gmf.item_key, **kwargs)
        probe = {key: tf.constant(np.asarray(gmf.spec[key].vocabulary[:1])) for key in (gmf.user_key, gmf.item_key)}
        fused(probe)
        for key in (fused.user_key, fused.item_key):
            fused.gmf_embeddings[key].set_weights(gmf.gmf_embeddings[key].get_weights())
            fused.mlp_embeddings[key].set_weights(mlp.mlp_embeddings[key].get_weights())
        fused.mlp.set_weights(mlp.mlp.get_weights())
        (gmf_kernel, gmf_bias), (mlp_kernel, mlp_bias) = gmf.head.get_weights(), mlp.head.get_weights()
        fused.head.set_weights(
            [
                np.concatenate([alpha * gmf_kernel, (1.0 - alpha) * mlp_kernel], axis=0),
                alpha * gmf_bias + (1.0 - alpha) * mlp_bias,
            ]
        )
        return fused


@export("tfrecs.models.GMF")
class GMF(NeuMF):
    """NCF's generalised matrix factorisation part: ``NeuMF`` with ``mode="gmf"`` (pre-training).

    Args:
        spec, gmf_dim, l2, user_key, item_key, label_key: as in ``NeuMF``.

    Example::

        gmf = GMF(spec, gmf_dim=8)
        gmf.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
        gmf.fit(pointwise_batches, epochs=5)
        fused = NeuMF.from_pretrained(gmf, mlp, alpha=0.5)
    """

    def __init__(
        self,
        spec: FeatureSpec,
        gmf_dim: int = 8,
        l2: float = 0.0,
        user_key: str = "user_id",
        item_key: str = "item_id",
        label_key: str = "label",
        **kwargs,
    ):
        super().__init__(
            spec,
            mode="gmf",
            gmf_dim=gmf_dim,
            l2=l2,
            user_key=user_key,
            item_key=item_key,
            label_key=label_key,
            **kwargs,
        )


@export("tfrecs.models.NCFMLP")
class NCFMLP(NeuMF):
    """NCF's MLP part: ``NeuMF`` with ``mode="mlp"`` (pre-training).

    Args:
        spec, mlp_embedding_dim, mlp_units, dropout, l2, user_key, item_key, label_key: as in
            ``NeuMF``.

    Example::

        mlp = NCFMLP(spec, mlp_embedding_dim=32, mlp_units=(32, 16, 8))
    """

    def __init__(
        self,
        spec: FeatureSpec,
        mlp_embedding_dim: int = 32,
        mlp_units: Sequence[int] = (32, 16, 8),
        dropout: float = 0.0,
        l2: float = 0.0,
        user_key: str = "user_id",
        item_key: str = "item_id",
        label_key: str = "label",
        **kwargs,
    ):
        super().__init__(
            spec,
            mode="mlp",
            mlp_embedding_dim=mlp_embedding_dim,
            mlp_units=mlp_units,
            dropout=dropout,
            l2=l2,
            user_key=user_key,
            item_key=item_key,
            label_key=label_key,
            **kwargs,
        )
