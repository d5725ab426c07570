"""What SASRec and BERT4Rec share: raw-id lookup, item table, encoder, towers, popularity fallback.

Id convention (inside the model; the windowing module's ``SequenceIds`` plus one OOV id):

* raw padding (``""`` for string catalogues, ``-1`` for integer ones, since integer
  catalogues may contain item 0) -> id 0; padded positions never enter attention or losses;
* catalogue item ``i`` -> id ``i + 1`` (``tfrecs.pipelines.ITEM_OFFSET``);
* ``num_items + 1`` is BERT4Rec's ``[mask]``; ``num_items + 2`` is OOV (any raw id outside the
  catalogue; it keeps its position, with an embedding row that training never updates).

Feature ``"history"``: ``[B, L]`` raw item ids, oldest first, left-padded. Histories longer
than the model's length are truncated to their most recent items. A history with no real
item (empty) gets the popularity ranking: the towers carry one extra dimension, the
candidate's ``log(1 + training count)`` times the query's "empty" flag, so an exported index
serves the fallback too. Feature ``"item_id"``: ``[B]`` raw candidate ids.
"""
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.layers.transformer import SequenceEncoder
from tfrecs.models.base import RetrievalModel
from tfrecs.data.sequence_ids import ITEM_OFFSET, PADDING_ID

HISTORY = "history"
ITEM_ID = "item_id"


def padding_value(item_ids: np.ndarray):
    """The raw id that pads histories of this catalogue: ``""`` (strings) or ``-1`` (integers)."""
    return "" if np.asarray(item_ids).dtype.kind in "USO" else -1


def raw_history_table(item_ids: np.ndarray) -> np.ndarray:
    """``table[sequence id]`` = raw id (``table[0]`` = padding): maps windowing ids back to raw ids.

    Example::

        raw_history_table(np.array(["a", "b"]))[np.array([0, 2])]   # -> ["", "b"]
    """
    item_ids = np.asarray(item_ids)
    if item_ids.dtype.kind in "USO":
        return np.concatenate([[""], item_ids.astype(str)]).astype(object)
    return np.concatenate([[-1], item_ids.astype(np.int64)])


class ItemLookup(tf_keras.layers.Layer):
    """Raw item ids -> model ids (padding 0, items ``1..n``, mask ``n+1``, OOV ``n+2``).

    Example::

        ItemLookup(np.array(["a", "b"]))(tf.constant([["", "b", "zz"]]))   # -> [[0, 2, 4]]
    """

    def __init__(self, item_ids: Sequence, **kwargs):
        super().__init__(**kwargs)
        item_ids = np.asarray(item_ids)
        self.num_items = len(item_ids)
        if self.num_items == 0:
            raise ValueError("item_ids: the catalogue is empty")
        self.padding = padding_value(item_ids)
        if isinstance(self.padding, str):
            self.table = tf_keras.layers.StringLookup(vocabulary=[str(i) for i in item_ids], mask_token="",
                                                      num_oov_indices=1)
        else:
            if np.any(item_ids < 0):
                raise ValueError("item_ids: integer catalogues must be non-negative (-1 pads histories)")
            self.table = tf_keras.layers.IntegerLookup(vocabulary=[int(i) for i in item_ids], mask_token=-1,
                                                       num_oov_indices=1)

    @property
    def mask_id(self) -> int:
        return self.num_items + ITEM_OFFSET

    @property
    def oov_id(self) -> int:
        return self.num_items + ITEM_OFFSET + 1

    @property
    def vocabulary_size(self) -> int:
        return self.num_items + ITEM_OFFSET + 2

    def call(self, raw):
        if isinstance(self.padding, int) and raw.dtype != tf.int64:
            raw = tf.cast(raw, tf.int64)
        index = self.table(raw)  # 0 padding, 1 OOV, 2.. items
        return tf.where(index == 1, tf.constant(self.oov_id, tf.int64), tf.maximum(index - 1, 0))


class SequentialRetrievalModel(RetrievalModel):
    """Base of SASRec / BERT4Rec: query tower = history -> hidden state, candidate tower = item table.

    Subclasses implement ``query_hidden(ids, training) -> [B, dim]`` (model ids, already
    looked up) and ``compute_loss``; ``item_logits`` scores hidden states against the whole
    catalogue with the shared (tied) item table.

    Args:
        item_ids: the catalogue's raw ids in catalogue order.
        item_counts: training interactions per catalogue item (popularity fallback, logQ).
        dim, max_len, num_blocks, num_heads, ffn_dim, dropout, causal, pre_norm, activation:
            the encoder (``tfrecs.layers.transformer.SequenceEncoder``).
        output_bias: a learned per-item output bias (BERT4Rec), carried as one more tower
            dimension.
        tie_output: score candidates with the input item table (``True``, as the SASRec and
            BERT4Rec papers) or with a separate output table (``False``).
        **kwargs: ``RetrievalModel`` arguments (e.g. ``temperature``).
    """

    def __init__(self, item_ids: Sequence, item_counts: Optional[Sequence] = None, dim: int = 64,
                 max_len: int = 50, num_blocks: int = 2, num_heads: int = 2, ffn_dim: Optional[int] = None,
                 dropout: float = 0.2, causal: bool = True, pre_norm: bool = True, activation: str = "relu",
                 output_bias: bool = False, tie_output: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.lookup = ItemLookup(item_ids, name="item_lookup")
        self.num_items = self.lookup.num_items
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2, got {max_len}")
        counts = np.zeros(self.num_items) if item_counts is None else np.asarray(item_counts, dtype=np.float64)
        if counts.shape != (self.num_items,) or np.any(counts < 0):
            raise ValueError(f"item_counts must be {self.num_items} non-negative counts (catalogue order), "
                             f"got shape {counts.shape}")
        self.max_len = int(max_len)
        self.query_length = self.max_len  # history items a query reads (BERT4Rec: max_len - 1)
        self.dim = int(dim)
        # rows by model id: padding, items, mask, OOV
        log_pop = np.concatenate([[0.0], np.log1p(counts), [0.0, 0.0]]).astype(np.float32)
        probability = np.concatenate([[1.0], np.maximum(counts, 1.0) / max(counts.sum(), 1.0), [1.0, 1.0]])
        self.log_popularity = tf.constant(log_pop)
        self.sampling_probability = tf.constant(probability.astype(np.float32))
        self.item_embedding = tf_keras.layers.Embedding(self.lookup.vocabulary_size, dim, name="item_embedding")
        self.encoder = SequenceEncoder(num_blocks, num_heads, dim, max_len, ffn_dim, dropout, causal, pre_norm,
                                       activation, name="encoder")
        self.output_embedding = (self.item_embedding if tie_output else
                                 tf_keras.layers.Embedding(self.lookup.vocabulary_size, dim, name="output_embedding"))
        self.output_bias = (tf_keras.layers.Embedding(self.lookup.vocabulary_size, 1, embeddings_initializer="zeros",
                                                      name="output_bias") if output_bias else None)
        for table in (self.item_embedding, self.output_embedding, self.output_bias):  # used as matrices before any call
            if table is not None:
                table.build((None,))

    # -- pieces --------------------------------------------------------------------------------
    def encode(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``[B, L, dim]`` hidden states of model ids (zero at padding)."""
        return self.encoder(self.item_embedding(ids), tf.not_equal(ids, PADDING_ID), training=training)

    def history_ids(self, features, length: int) -> tf.Tensor:
        """Model ids of the last ``length`` items of ``features["history"]`` (raw, left-padded)."""
        if HISTORY not in features:
            raise KeyError(f"{type(self).__name__} reads feature {HISTORY!r} (raw item ids, left-padded); "
                           f"the batch has {sorted(features)}")
        return self.lookup(features[HISTORY])[:, -length:]

    def training_features(self, inputs, key: str, meaning: str):
        """The features dict of a training batch; raises ``KeyError`` naming ``key`` if it is missing."""
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        if key not in features:
            raise KeyError(f"{type(self).__name__} training batches need feature {key!r} ({meaning}); "
                           f"the batch has {sorted(features)}")
        return features

    def item_logits(self, hidden: tf.Tensor) -> tf.Tensor:
        """``[..., num_items]`` float32 scores of every catalogue item (output table + bias)."""
        table = self.output_embedding.embeddings[ITEM_OFFSET:ITEM_OFFSET + self.num_items]
        logits = tf.matmul(tf.cast(hidden, tf.float32), tf.cast(table, tf.float32), transpose_b=True)
        if self.output_bias is not None:
            logits += tf.cast(self.output_bias.embeddings[ITEM_OFFSET:ITEM_OFFSET + self.num_items, 0], tf.float32)
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
        if ITEM_ID not in features:
            raise KeyError(f"the candidate tower reads feature {ITEM_ID!r}; the batch has {sorted(features)}")
        ids = self.lookup(features[ITEM_ID])
        parts = [tf.cast(self.output_embedding(ids), tf.float32)]
        if self.output_bias is not None:
            parts.append(tf.cast(self.output_bias(ids), tf.float32))
        parts.append(tf.gather(self.log_popularity, ids)[:, None])
        return tf.concat(parts, axis=1)

    def _forward_for_build(self, batch) -> None:
        features = batch[0] if isinstance(batch, tuple) else batch
        self.compute_query_embeddings(features)
        self.compute_candidate_embeddings({ITEM_ID: features[HISTORY][:1, -1]})


def masked_sparse_ce(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Summed softmax cross-entropy of ``logits [N, num_items]`` against model ids ``labels [N]``."""
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels - ITEM_OFFSET, logits))
