"""Transformer layers of the sequential models (SASRec, BERT4Rec): a block and an encoder stack.

Masks: a ``[B, L]`` boolean ``padding_mask`` (True = real item). Padded keys never receive
attention; each query may always attend to itself, so no softmax row is empty; outputs at
padded positions are zeroed after every block, so they never feed a later block or a loss.
``causal=True`` adds the lower-triangular mask (position t sees positions <= t).

Positions are counted from the END of the sequence (the last item is position 0). With
left padding this is what SASRec's absolute positions amount to, and it makes the last
hidden state independent of how much left padding a history carries.

Example::

    encoder = SequenceEncoder(num_blocks=2, num_heads=2, dim=64, max_len=50, causal=True)
    hidden = encoder(item_embeddings, padding_mask=ids != 0)   # [B, L, 64]
"""

from typing import Optional

import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export


def attention_mask(padding_mask: tf.Tensor, causal: bool) -> tf.Tensor:
    """``[B, L, L]`` boolean mask (query, key): real keys (and causal order), diagonal always on.

    Example::

        attention_mask(tf.constant([[False, True, True]]), causal=True)[0]
        # [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    """
    padding_mask = tf.cast(padding_mask, tf.bool)
    length = tf.shape(padding_mask)[1]
    mask = tf.repeat(padding_mask[:, None, :], length, axis=1)
    if causal:
        lower = tf.cast(tf.linalg.band_part(tf.ones([length, length]), -1, 0), tf.bool)
        mask = tf.logical_and(mask, lower[None])
    diagonal = tf.cast(tf.eye(length), tf.bool)[None]
    return tf.logical_or(mask, diagonal)


@export("tfrecs.layers.TransformerBlock")
class TransformerBlock(ConfigFromInit, tf_keras.layers.Layer):
    """Multi-head self-attention + position-wise feed-forward, residuals, pre- or post-norm.

    Args:
        num_heads: attention heads (``dim`` must divide by it).
        dim: model width.
        ffn_dim: feed-forward inner width (default ``4 * dim``).
        dropout: dropout on attention weights, sub-layer outputs and the FFN.
        causal: causal mask (SASRec) or bidirectional (BERT4Rec).
        pre_norm: LayerNorm before each sub-layer (SASRec's code) or after (BERT, post-norm).
        activation: FFN activation (``"relu"`` SASRec, ``"gelu"`` BERT4Rec).

    Call: ``block(x [B, L, dim], padding_mask [B, L] bool, training) -> [B, L, dim]``, zero at
    padded positions.

    Raises:
        ValueError: ``dim`` not divisible by ``num_heads``.

    Example::

        block = TransformerBlock(num_heads=2, dim=64, causal=True)
        y = block(x, padding_mask=mask)
    """

    def __init__(
        self,
        num_heads: int,
        dim: int,
        ffn_dim: Optional[int] = None,
        dropout: float = 0.2,
        causal: bool = True,
        pre_norm: bool = True,
        activation: str = "relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = int(num_heads)
        self.dim = int(dim)
        self.ffn_dim = ffn_dim
        self.dropout = float(dropout)
        self.causal = bool(causal)
        self.pre_norm = bool(pre_norm)
        self.activation = activation
        self.attention = tf_keras.layers.MultiHeadAttention(
            num_heads, dim // num_heads, dropout=dropout, name="attention"
        )
        self.ffn_in = tf_keras.layers.Dense(ffn_dim or 4 * dim, activation=activation, name="ffn_in")
        self.ffn_out = tf_keras.layers.Dense(dim, name="ffn_out")
        self.norm_attention = tf_keras.layers.LayerNormalization(epsilon=1e-6, name="norm_attention")
        self.norm_ffn = tf_keras.layers.LayerNormalization(epsilon=1e-6, name="norm_ffn")
        self.dropout_attention = tf_keras.layers.Dropout(dropout)
        self.dropout_ffn = tf_keras.layers.Dropout(dropout)
        self.dropout_inner = tf_keras.layers.Dropout(dropout)

    def build(self, input_shape):
        # MultiHeadAttention builds its projections here, not lazily inside its call, so a
        # SavedModel reload restores them (tf-keras' documented rule for nested attention).
        # Random draws keep their order: nothing with random initialisers is built before it.
        shape = tf.TensorShape(input_shape)
        self.attention._build_from_signature(query=shape, value=shape)
        super().build(input_shape)

    def call(self, x, padding_mask, training=False):
        keep = tf.cast(padding_mask, x.dtype)[:, :, None]
        mask = attention_mask(padding_mask, self.causal)
        h = self.norm_attention(x) if self.pre_norm else x
        # SASRec's code: queries are normalised, keys/values are the raw residual stream.
        attended = self.attention(h, x if self.pre_norm else h, attention_mask=mask, training=training)
        x = x + self.dropout_attention(attended, training=training)
        if not self.pre_norm:
            x = self.norm_attention(x)
        h = self.norm_ffn(x) if self.pre_norm else x
        h = self.ffn_out(self.dropout_inner(self.ffn_in(h), training=training))
        x = x + self.dropout_ffn(h, training=training)
        if not self.pre_norm:
            x = self.norm_ffn(x)
        return x * keep


@export("tfrecs.layers.SequenceEncoder")
class SequenceEncoder(ConfigFromInit, tf_keras.layers.Layer):
    """Positional embedding (counted from the end) + dropout + ``num_blocks`` transformer blocks.

    Args:
        num_blocks, num_heads, dim, ffn_dim, dropout, causal, pre_norm, activation: as in
            ``TransformerBlock``.
        max_len: longest sequence (rows of the positional table).

    Call: ``encoder(item_embeddings [B, L, dim], padding_mask [B, L], training) -> [B, L, dim]``
    (``L <= max_len``). Pre-norm stacks end with a LayerNorm; post-norm stacks normalise the
    input embedding (as BERT does).

    Example::

        encoder = SequenceEncoder(2, 1, 50, max_len=200, causal=True)
    """

    def __init__(
        self,
        num_blocks: int,
        num_heads: int,
        dim: int,
        max_len: int,
        ffn_dim: Optional[int] = None,
        dropout: float = 0.2,
        causal: bool = True,
        pre_norm: bool = True,
        activation: str = "relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_blocks = int(num_blocks)
        self.num_heads = int(num_heads)
        self.dim = int(dim)
        self.max_len = int(max_len)
        self.ffn_dim = ffn_dim
        self.dropout = float(dropout)
        self.causal = bool(causal)
        self.pre_norm = bool(pre_norm)
        self.activation = activation
        self.positions = tf_keras.layers.Embedding(self.max_len, dim, name="positions")
        self.input_dropout = tf_keras.layers.Dropout(dropout)
        self.blocks = [
            TransformerBlock(num_heads, dim, ffn_dim, dropout, causal, pre_norm, activation, name=f"block_{i}")
            for i in range(num_blocks)
        ]
        self.norm = tf_keras.layers.LayerNormalization(epsilon=1e-6, name="norm")

    def call(self, embeddings, padding_mask, training=False):
        length = tf.shape(embeddings)[1]
        from_end = tf.range(length - 1, -1, -1)
        keep = tf.cast(padding_mask, embeddings.dtype)[:, :, None]
        x = embeddings * tf.cast(tf.sqrt(float(self.dim)), embeddings.dtype) + self.positions(from_end)[None]
        if not self.pre_norm:
            x = self.norm(x)
        x = self.input_dropout(x, training=training) * keep
        for block in self.blocks:
            x = block(x, padding_mask, training=training)
        if self.pre_norm:
            x = self.norm(x) * keep
        return x
