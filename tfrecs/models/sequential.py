"""What SASRec and BERT4Rec share: raw-id lookup, item table, encoder, towers, popularity fallback.

Ids: the models read RAW item ids and map them once, with ``tfrecs.layers.ItemLookup``, to
``tfrecs.data.sequence_ids.SequenceIds`` (the ids ``tfrecs.pipelines.windowing`` uses):
raw padding (``""`` for string catalogues, ``-1`` for integer ones) -> 0, padded positions
never enter attention or losses; catalogue item ``i`` -> ``i + 1``; ``num_items + 1`` is
BERT4Rec's ``[mask]``; ``num_items + 2`` is OOV (any raw id outside the catalogue; it keeps
its position, with an embedding row that training never updates). Tables have
``SequenceIds(num_items).vocabulary_size`` rows.

Feature ``"history"``: ``[B, L]`` raw item ids, oldest first, left-padded. Histories longer
than the model's length are truncated to their most recent items. A history with no real
item (empty) gets the popularity ranking: the towers carry one extra dimension, the
candidate's ``log(1 + training count)`` times the query's "empty" flag, so an exported index
serves the fallback too. Feature ``"item_id"``: ``[B]`` raw candidate ids.
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.data.sequence_ids import ITEM_OFFSET, PADDING_ID
from tfrecs.layers.item_lookup import ItemLookup
from tfrecs.layers.transformer import SequenceEncoder
from tfrecs.models.base import RetrievalModel, require_inputs

HISTORY = "history"
ITEM_ID = "item_id"


class SequentialRetrievalModel(RetrievalModel):
    """Base of SASRec / BERT4Rec: query tower = history -> hidden state, candidate tower = item table.

    Subclasses implement ``query_hidden(ids, training) -> [B, dim]`` (model ids, already
    looked up) and ``compute_loss``; ``item_logits`` scores hidden states against the whole
    catalogue with the shared (tied) item table. Hyper-parameters are stored under their
    argument names (``get_config`` reads them back).

    Args:
        item_ids: the catalogue's raw ids in catalogue order.
        item_counts: training interactions per catalogue item (popularity fallback, logQ);
            ``None``: all zero.
        dim, max_len, num_blocks, num_heads, dropout, pre_norm: the encoder
            (``tfrecs.layers.SequenceEncoder``); ``max_len`` is the model's sequence length.
        ffn_dim: feed-forward width (``None``: ``ffn_multiplier * dim``).
        tie_output: score candidates with the input item table (``True``, as the SASRec and
            BERT4Rec papers) or with a separate output table (``False``).
        temperature: softmax temperature of the base's Retrieval task (sampled softmax).
        causal, activation, ffn_multiplier: fixed by the architecture (subclasses set them).
        output_bias: a learned per-item output bias (BERT4Rec), carried as one more tower
            dimension.
        **kwargs: Keras ``Model`` arguments (``name``).

    Raises:
        ValueError: ``max_len < 2``, or ``item_counts`` not one non-negative count per item.
    """

    def __init__(
        self,
        item_ids: Sequence,
        item_counts: Optional[Sequence] = None,
        dim: int = 64,
        max_len: int = 50,
        num_blocks: int = 2,
        num_heads: int = 2,
        ffn_dim: Optional[int] = None,
        dropout: float = 0.2,
        pre_norm: bool = True,
        tie_output: bool = True,
        temperature: Optional[float] = None,
        causal: bool = True,
        activation: str = "relu",
        ffn_multiplier: int = 1,
        output_bias: bool = False,
        **kwargs,
    ):
        super().__init__(temperature=temperature, **kwargs)
        self.lookup = ItemLookup(item_ids, name="item_lookup")
        self.item_ids = self.lookup.item_ids
        self.num_items = self.lookup.ids.num_items
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2, got {max_len}")
        counts = np.zeros(self.num_items) if item_counts is None else np.asarray(item_counts, dtype=np.float64)
        if counts.shape != (self.num_items,) or np.any(counts < 0):
            raise ValueError(
                f"item_counts must be {self.num_items} non-negative counts (catalogue order), got shape {counts.shape}"
            )
        self.item_counts = None if item_counts is None else counts
        self.dim = int(dim)
        self.max_len = int(max_len)
        self.num_blocks = int(num_blocks)
        self.num_heads = int(num_heads)
        self.ffn_dim = None if ffn_dim is None else int(ffn_dim)
        self.dropout = float(dropout)
        self.pre_norm = bool(pre_norm)
        self.tie_output = bool(tie_output)
        self.temperature = temperature
        self.query_length = self.max_len  # history items a query reads (BERT4Rec: max_len - 1)
        vocabulary_size = self.lookup.ids.vocabulary_size
        # rows by model id: padding, items, mask, OOV
        log_pop = np.concatenate([[0.0], np.log1p(counts), [0.0, 0.0]]).astype(np.float32)
        probability = np.concatenate([[1.0], np.maximum(counts, 1.0) / max(counts.sum(), 1.0), [1.0, 1.0]])
        self.log_popularity = tf.constant(log_pop)
        self.sampling_probability = tf.constant(probability.astype(np.float32))
        self.item_embedding = tf_keras.layers.Embedding(vocabulary_size, dim, name="item_embedding")
        self.encoder = SequenceEncoder(
            num_blocks,
            num_heads,
            dim,
            max_len,
            ffn_dim or ffn_multiplier * dim,
            dropout,
            causal,
            pre_norm,
            activation,
            name="encoder",
        )
        self.output_embedding = (
            self.item_embedding
            if tie_output
            else tf_keras.layers.Embedding(vocabulary_size, dim, name="output_embedding")
        )
        self.output_bias = (
            tf_keras.layers.Embedding(vocabulary_size, 1, embeddings_initializer="zeros", name="output_bias")
            if output_bias
            else None
        )
        for table in (self.item_embedding, self.output_embedding, self.output_bias):  # used as matrices before any call
            if table is not None:
                table.build((None,))

    # -- pieces --------------------------------------------------------------------------------
    def encode(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[B, L, dim]`` hidden states of model ids (zero at padding)."""
        return self.encoder(self.item_embedding(ids), tf.not_equal(ids, PADDING_ID), training=training)

    def history_ids(self, features, length: int) -> tf.Tensor:
        """Model ids of the last ``length`` items of ``features["history"]`` (raw, left-padded)."""
        require_inputs(
            type(self).__name__,
            features,
            [HISTORY],
            how="Give each query's raw item ids, oldest first, left-padded with '' or -1.",
        )
        return self.lookup(features[HISTORY])[:, -length:]

    def training_features(self, inputs, key: str, meaning: str):
        """The features dict of a training batch.

        Raises:
            MissingInputError: the batch lacks ``key`` (the message says what it holds).
        """
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        require_inputs(type(self).__name__, features, [key], how=f"Training batches carry it: {meaning}.")
        return features

    def item_logits(self, hidden: tf.Tensor) -> tf.Tensor:
        """``[..., num_items]`` float32 scores of every catalogue item (output table + bias)."""
        table = self.output_embedding.embeddings[ITEM_OFFSET : ITEM_OFFSET + self.num_items]
        logits = tf.matmul(tf.cast(hidden, tf.float32), tf.cast(table, tf.float32), transpose_b=True)
        if self.output_bias is not None:
            logits += tf.cast(self.output_bias.embeddings[ITEM_OFFSET : ITEM_OFFSET + self.num_items, 0], tf.float32)
        return logits

    def pair_logits(self, hidden: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
        """float32 score of ``hidden [..., dim]`` against item ids ``[..., K]`` -> ``[..., K]``."""
        items = tf.cast(self.output_embedding(ids), tf.float32)
        logits = tf.einsum("...d,...kd->...k", tf.cast(hidden, tf.float32), items)
        if self.output_bias is not None:
            logits += tf.cast(self.output_bias(ids)[..., 0], tf.float32)
        return logits

    def query_hidden(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        raise NotImplementedError

    # -- towers ---------------------------------------------------------------------------------
    def compute_query_embeddings(self, features, training: bool = False) -> tf.Tensor:
        """``[B, dim + extras]``: hidden state, (1 for the bias), and the empty-history flag."""
        ids = self.history_ids(features, self.query_length)
        empty = tf.reduce_all(tf.equal(ids, PADDING_ID), axis=1, keepdims=True)
        hidden = tf.cast(self.query_hidden(ids, training=training), tf.float32)
        hidden = tf.where(empty, tf.zeros_like(hidden), hidden)
        parts = [hidden]
        if self.output_bias is not None:
            parts.append(1.0 - tf.cast(empty, tf.float32))
        parts.append(tf.cast(empty, tf.float32))
        return tf.concat(parts, axis=1)

    def compute_candidate_embeddings(self, features, training: bool = False) -> tf.Tensor:
        """``[B, dim + extras]``: item vector, (output bias), ``log(1 + count)``."""
        require_inputs(f"{type(self).__name__}'s candidate tower", features, [ITEM_ID], how="Give raw item ids.")
        ids = self.lookup(features[ITEM_ID])
        parts = [tf.cast(self.output_embedding(ids), tf.float32)]
        if self.output_bias is not None:
            parts.append(tf.cast(self.output_bias(ids), tf.float32))
        parts.append(tf.gather(self.log_popularity, ids)[:, None])
        return tf.concat(parts, axis=1)

    def catalogue(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(raw item ids [N], candidate embeddings [N, dim + extras])``: what ``recommend`` ranks.

        The embeddings include the popularity-fallback dimension, so an empty history is
        answered with the most popular items.
        """
        ids = tf.constant(self.item_ids)
        return ids, self.candidate_embeddings({ITEM_ID: ids})

    def _forward_for_build(self, batch) -> None:
        features = batch[0] if isinstance(batch, tuple) else batch
        self.compute_query_embeddings(features)
        self.compute_candidate_embeddings({ITEM_ID: features[HISTORY][:1, -1]})


def masked_sparse_ce(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Summed softmax cross-entropy of ``logits [N, num_items]`` against model ids ``labels [N]``."""
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels - ITEM_OFFSET, logits))
