"""Factorization-machine second-order interaction (Rendle 2010), the sum-square minus square-sum form.

``0.5 * ((sum_i v_i)^2 - sum_i v_i^2)`` summed over the embedding dimension equals
``sum_{i<j} <v_i, v_j>`` over all field pairs, in ``O(F d)`` instead of ``O(F^2 d)``.

Example::

    fm = FMInteraction()
    logits_part = fm(embeddings)      # [batch, fields, dim] -> [batch, 1]
"""

import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export


@export("tfrecs.layers.FMInteraction")
class FMInteraction(ConfigFromInit, tf_keras.layers.Layer):
    """Pairwise interactions of field embeddings.

    Args:
        reduce_sum: ``True``: ``[batch, 1]`` (the FM term of a logit); ``False``:
            ``[batch, dim]``, the bi-interaction vector (NFM).

    Call args:
        embeddings: ``[batch, fields, dim]``.

    Raises:
        ValueError: the input is not rank 3.
    """

    def __init__(self, reduce_sum: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.reduce_sum = reduce_sum

    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        if embeddings.shape.rank != 3:
            raise ValueError(f"FMInteraction expects [batch, fields, dim] embeddings, got shape {embeddings.shape}")
        square_of_sum = tf.square(tf.reduce_sum(embeddings, axis=1))
        sum_of_square = tf.reduce_sum(tf.square(embeddings), axis=1)
        interaction = 0.5 * (square_of_sum - sum_of_square)
        return tf.reduce_sum(interaction, axis=1, keepdims=True) if self.reduce_sum else interaction
