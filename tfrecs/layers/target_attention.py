"""Target attention over a behaviour sequence: DIN's activation unit (Zhou et al., 2018).

Each earlier behaviour (an item embedding) is scored against the target item by a small MLP
on ``[target, behaviour, target - behaviour, target * behaviour]``; the user's interest
vector is the score-weighted sum of the behaviours, so it changes with the target. Padding
positions get weight 0. DIN keeps the raw scores (no softmax, so the vector's norm carries
how much of the history is relevant); ``normalize=True`` takes a masked softmax instead.

Example::

    attention = TargetAttention(hidden_units=(80, 40))
    interest = attention(target, behaviours, mask)                  # [B, d]
    interest, weights = attention(target, behaviours, mask, return_weights=True)  # weights [B, T]
"""

from typing import Optional, Sequence

import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export
from tfrecs.layers.mlp import MLP, activation_name


@export("tfrecs.layers.TargetAttention")
class TargetAttention(ConfigFromInit, tf_keras.layers.Layer):
    """DIN's activation unit: target-dependent weighted pooling of a behaviour sequence.

    Args:
        hidden_units: hidden layers of the scoring MLP (DIN: 80, 40).
        activation: activation of the scoring MLP (DIN uses a sigmoid-like unit).
        normalize: ``False`` (DIN): weights are the raw scores; ``True``: masked softmax.

    Call args:
        target: ``[B, d]`` target embeddings.
        behaviours: ``[B, T, d]`` behaviour embeddings.
        mask: ``[B, T]`` bool, True at real (non-padding) positions (None: all real).
        return_weights: also return the ``[B, T]`` weights.

    Returns:
        ``[B, d]`` interest vectors (and ``[B, T]`` weights, 0 at padding).

    Raises:
        ValueError: target and behaviours differ in embedding size or rank.
    """

    def __init__(
        self, hidden_units: Sequence[int] = (80, 40), activation: str = "sigmoid", normalize: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(units) for units in hidden_units)
        self.activation = activation_name(activation)
        self.normalize = bool(normalize)
        self.scorer = MLP(self.hidden_units, activation=self.activation, output_units=1, output_dtype=None)

    def call(
        self,
        target: tf.Tensor,
        behaviours: tf.Tensor,
        mask: Optional[tf.Tensor] = None,
        return_weights: bool = False,
        training: Optional[bool] = None,
    ):
        if target.shape.rank != 2 or behaviours.shape.rank != 3:
            raise ValueError(
                f"TargetAttention expects target [B, d] and behaviours [B, T, d]; "
                f"got shapes {target.shape} and {behaviours.shape}"
            )
        if (
            target.shape[-1] is not None
            and behaviours.shape[-1] is not None
            and target.shape[-1] != behaviours.shape[-1]
        ):
            raise ValueError(
                f"TargetAttention: target size {target.shape[-1]} differs from behaviour size {behaviours.shape[-1]}"
            )
        behaviours = tf.cast(behaviours, target.dtype)
        queries = tf.broadcast_to(target[:, None, :], tf.shape(behaviours))
        pairs = tf.concat([queries, behaviours, queries - behaviours, queries * behaviours], axis=-1)
        scores = tf.squeeze(tf.cast(self.scorer(pairs, training=training), tf.float32), axis=-1)  # [B, T]
        if mask is None:
            mask = tf.ones_like(scores, dtype=tf.bool)
        mask = tf.cast(mask, tf.bool)
        if self.normalize:
            scores = tf.where(mask, scores, tf.fill(tf.shape(scores), -1e9))
            weights = tf.nn.softmax(scores, axis=-1) * tf.cast(mask, tf.float32)
        else:
            weights = tf.where(mask, scores, tf.zeros_like(scores))
        interest = tf.einsum("bt,btd->bd", tf.cast(weights, behaviours.dtype), behaviours)
        return (interest, weights) if return_weights else interest
