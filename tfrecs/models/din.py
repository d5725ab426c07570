"""DIN: Deep Interest Network (Zhou et al., KDD 2018) on the tfrecs ranking base.

The user's earlier items (a behaviour sequence of raw item ids) are embedded with the SAME
table as the target item and pooled by target attention (``TargetAttention``), so the
user's interest vector depends on the item being scored. The interest vector, the target
item's embedding and the embeddings of the other features feed an MLP that outputs the
click logit (TFRS Ranking task, binary).

Example::

    spec = FeatureSpec([Feature("user_id", "categorical"), Feature("item_id", "categorical")]).fit(columns)
    model = DIN(spec, history_key="history")          # features["history"]: [B, T] raw item ids
    model.compile(optimizer="adam")
    model.fit(dataset)                                # batches hold "label" in {0, 1}

``tfrecs.pipelines.ctr_view.load_ctr_data(split, history_length=50)`` builds such batches
(each row's strictly earlier items) from a split.
"""

from typing import Dict, Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras

from tfrecs.core.registration import export
from tfrecs.data.feature_spec import SEQUENCE_PADDING, FeatureSpec
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.layers.target_attention import TargetAttention
from tfrecs.models.base import require_inputs
from tfrecs.models.ctr_base import CTRModel


@export("tfrecs.models.DIN", name="din")
class DIN(CTRModel):
    """Deep Interest Network: target attention over the user's behaviour sequence.

    Args:
        spec: fitted ``FeatureSpec`` (or its config dict); must hold ``item_key``
            (categorical).
        features: features embedded as context (default: every spec feature); ``item_key``
            and ``history_key`` are left out of it.
        embedding_dim: embedding size.
        history_key: feature with each row's earlier items as raw item ids, ``[B, T]``
            padded with the spec's padding value (``""`` for string ids, ``-1`` for int64)
            or ragged. It is read with the item lookup, not the spec's own entry for it (if
            any).
        item_key: the target item's id feature.
        attention_units: hidden layers of the activation unit (DIN: 80, 40).
        attention_activation: activation of the activation unit.
        normalize_attention: softmax the attention scores (DIN: no).
        hidden_units: the prediction MLP (DIN: 200, 80).
        dropout: dropout in the prediction MLP.
        l2: L2 penalty on the context embeddings and the MLP kernels.
        **kwargs: ``CTRModel`` options (``label_key``: feature holding the 0/1 label, ...)
            and Keras ``name``.

    Raises:
        KeyError: ``item_key`` or a context feature is not in the spec.
        MissingInputError: at call time, a batch without ``history_key`` or a needed feature.
        ValueError: ``item_key`` is not a categorical feature.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        features: Optional[Sequence[str]] = None,
        embedding_dim: int = 16,
        history_key: str = "history",
        item_key: str = "item_id",
        attention_units: Sequence[int] = (80, 40),
        attention_activation: str = "sigmoid",
        normalize_attention: bool = False,
        hidden_units: Sequence[int] = (200, 80),
        dropout: float = 0.0,
        l2: float = 0.0,
        **kwargs,
    ):
        spec = FeatureSpec.coerce(spec)
        if spec[item_key].kind != "categorical":
            raise ValueError(f"DIN: item_key feature {item_key!r} must be categorical, it is {spec[item_key].kind}")
        context = [
            name for name in (spec.names if features is None else features) if name not in (item_key, history_key)
        ]
        # CTRModel's embedding is the item table, shared by the target and the behaviours.
        super().__init__(spec, [item_key], embedding_dim, hidden_units, dropout, l2, **kwargs)
        self.features = context
        self.history_key, self.item_key = history_key, item_key
        self.attention_units = tuple(attention_units)
        self.attention_activation, self.normalize_attention = attention_activation, normalize_attention
        self.padding = SEQUENCE_PADDING[spec[item_key].dtype]
        regularizer = tf_keras.regularizers.l2(l2) if l2 else None
        self.context_embedding = (
            FeatureEmbedding(
                spec, embedding_dim, features=context, embeddings_regularizer=regularizer, name="context_embedding"
            )
            if context
            else None
        )
        self.attention = TargetAttention(
            self.attention_units, activation=attention_activation, normalize=normalize_attention
        )

    def required_inputs(self) -> Sequence[str]:
        """Target item, behaviour sequence and context features."""
        return [self.item_key, self.history_key] + list(self.features)

    def _items(self, features) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(target ``[B, d]``, behaviours ``[B, T, d]``, mask ``[B, T]``) from a batch."""
        require_inputs(
            "DIN",
            features,
            self.required_inputs(),
            how=f"{self.history_key!r} is the behaviour sequence: each row's earlier items as raw item "
            "ids, [batch, length] (tfrecs.pipelines.ctr_view.load_ctr_data(split, history_length=50)).",
        )
        history = features[self.history_key]
        if isinstance(history, tf.RaggedTensor):
            history = history.to_tensor(default_value=self.padding)
        if history.shape.rank != 2:
            raise ValueError(
                f"DIN: feature {self.history_key!r} must be [batch, length] item ids, got shape {history.shape}"
            )
        target = self.embedding(features)[self.item_key]
        flat = self.embedding({self.item_key: tf.reshape(history, [-1])})[self.item_key]
        length = history.shape[1] if history.shape[1] is not None else tf.shape(history)[1]
        behaviours = tf.reshape(flat, [-1, length, self.embedding.embedding_dim])
        return target, behaviours, tf.not_equal(history, self.padding)

    def user_interest(self, features, return_weights: bool = False, training: bool = False):
        """The attention-pooled interest vector ``[B, d]`` (and ``[B, T]`` weights) per row."""
        target, behaviours, mask = self._items(features)
        return self.attention(target, behaviours, mask, return_weights=return_weights, training=training)

    def call(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        target, behaviours, mask = self._items(features)
        parts = [target, self.attention(target, behaviours, mask, training=training)]
        if self.context_embedding is not None:
            parts.append(self.context_embedding.concatenated(features))
        return self.deep(tf.concat(parts, axis=-1), training=training)
