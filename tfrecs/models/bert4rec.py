"""BERT4Rec (Sun et al., CIKM 2019): a bidirectional transformer trained with the Cloze task.

Training batches: ``"history"`` ``[B, L]`` raw ids (unmasked) and ``"label_mask"`` ``[B, L]``
(1.0 where the item is to be hidden and predicted), as
``tfrecs.pipelines.SequenceData.cloze_batches`` makes them: the pipeline draws the Cloze
positions (``tfrecs.pipelines.cloze_positions``), the model puts ``[mask]`` there, once. The
loss is the softmax cross-entropy over the whole catalogue at masked positions, with the
output layer tied to the item table plus a per-item bias.

Inference appends ``[mask]`` to the last ``max_len - 1`` history items and takes that
position's output as the query. Ids, padding, OOV, truncation and the empty-history
fallback: ``tfrecs.models.sequential``.

Example::

    model = BERT4Rec(data.item_ids, data.counts, max_len=50)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(data.cloze_batches(max_len=50, batch_size=128, mask_probability=0.2), epochs=400)
    query = model({"history": tf.constant([["", "50", "172"]])})   # [1, dim + 2]
"""

from typing import Optional, Sequence

import tensorflow as tf
import tf_keras

from tfrecs.core import cross_replica
from tfrecs.core.registration import export
from tfrecs.data.sequence_ids import ITEM_OFFSET
from tfrecs.models.sequential import SequentialRetrievalModel, masked_sparse_ce

LABEL_MASK = "label_mask"


@export("tfrecs.models.BERT4Rec", name="bert4rec")
class BERT4Rec(SequentialRetrievalModel):
    """Bidirectional Cloze-trained sequential recommender on the TFRS Retrieval base.

    Defaults are the paper's ML-1M settings (dim 64, 2 blocks, 2 heads, dropout 0.1,
    sequence length 200, post-norm, GELU, feed-forward width ``4 * dim``, tied output with a
    per-item bias). The Cloze mask probability belongs to the data pipeline.

    Args:
        item_ids: catalogue raw ids (catalogue order).
        item_counts: training counts per item (empty-history popularity fallback).
        dim: item and hidden width.
        max_len: sequence length, the appended ``[mask]`` included.
        num_blocks, num_heads: transformer blocks and attention heads.
        ffn_dim: feed-forward width (``None``: ``4 * dim``).
        dropout: dropout rate of the embeddings and every block.
        pre_norm: pre-norm blocks instead of BERT's post-norm.
        tie_output: share the input item table with the output layer (as the paper).
        **kwargs: Keras ``Model`` arguments (``name``).

    Raises:
        ValueError: ``max_len < 2`` or bad ``item_counts``.
    """

    def __init__(
        self,
        item_ids: Sequence,
        item_counts: Optional[Sequence] = None,
        dim: int = 64,
        max_len: int = 200,
        num_blocks: int = 2,
        num_heads: int = 2,
        ffn_dim: Optional[int] = None,
        dropout: float = 0.1,
        pre_norm: bool = False,
        tie_output: bool = True,
        **kwargs,
    ):
        super().__init__(
            item_ids,
            item_counts,
            dim=dim,
            max_len=max_len,
            num_blocks=num_blocks,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            dropout=dropout,
            pre_norm=pre_norm,
            tie_output=tie_output,
            causal=False,
            activation="gelu",
            ffn_multiplier=4,
            output_bias=True,
            **kwargs,
        )
        self.head = tf_keras.Sequential(
            [tf_keras.layers.Dense(dim, activation="gelu"), tf_keras.layers.LayerNormalization(epsilon=1e-6)],
            name="head",
        )
        self.query_length = self.max_len - 1

    def query_hidden(self, ids, training=False):
        """Output at a ``[mask]`` appended after the history ids (``max_len - 1`` of them)."""
        masked = tf.concat([ids, tf.fill([tf.shape(ids)[0], 1], tf.constant(self.lookup.ids.mask, ids.dtype))], axis=1)
        return self.head(self.encode(masked, training=training)[:, -1:, :])[:, 0, :]

    def compute_loss(self, inputs, training=False):
        """This replica's share of the Cloze cross-entropy, averaged over masked positions."""
        features = self.training_features(inputs, LABEL_MASK, "1.0 at masked positions")
        ids = self.history_ids(features, self.max_len)
        chosen = tf.cast(features[LABEL_MASK], tf.float32)[:, -self.max_len :] > 0
        chosen &= (ids >= ITEM_OFFSET) & (ids < ITEM_OFFSET + self.num_items)
        masked = tf.where(chosen, tf.constant(self.lookup.ids.mask, ids.dtype), ids)
        hidden = tf.boolean_mask(self.head(self.encode(masked, training=training)), chosen)
        labels = tf.boolean_mask(ids, chosen)
        loss = masked_sparse_ce(self.item_logits(hidden), labels)
        return self.replica_loss(loss, cross_replica.batch_size(labels))
