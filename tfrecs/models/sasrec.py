"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over a user's history.

Query tower: raw history -> last position's hidden state; candidate tower: the shared item
table (tied with the output layer). Ids, padding, OOV, truncation and the empty-history
fallback: ``tfrecs.models.sequential``.

Training batches: ``"history"`` ``[B, L]`` raw input ids and ``"targets"`` ``[B, L]`` raw next
items (padding where there is no target), as ``tfrecs.pipelines.SequenceData.causal_batches``
makes them.
Every real target is a training position. Objectives (``objective=``):

* ``"bce"``: the paper's binary cross-entropy, one uniform negative per position;
* ``"ce"``: softmax cross-entropy over the whole catalogue (Klenitskiy & Vasilev, 2023);
* ``"sampled_softmax"``: the base's TFRS Retrieval task over the batch's targets (global
  across replicas), logQ-corrected by training popularity, accidental hits masked;
* ``"gbce"``: gSASRec's generalised BCE with ``num_negatives`` uniform negatives and
  calibration ``gbce_t`` (Petrov & Macdonald, 2023);
* ``"uniform_softmax"``: softmax cross-entropy of each target against ``num_negatives``
  uniform negatives shared by the batch (Klenitskiy & Vasilev's "3000 negatives" row:
  close to ``ce`` on large catalogues at a fraction of its output cost).

Negatives are drawn uniformly from the catalogue inside the step: one per position for
``bce``; for ``gbce``, ``num_negatives`` per training sequence, shared by its positions
(one ``[B, L, k]`` product); for ``uniform_softmax``, ``num_negatives`` per batch; a
negative equal to its position's target is dropped.
Both binary objectives add one learned offset to every logit, initialised at ``-log k``.

Example::

    data = SequenceData.from_split(make_split(load_dataset("ml-100k"), "loo"))
    model = SASRec(data.item_ids, data.counts, objective="ce", dim=64, num_heads=2, max_len=50)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(data.causal_batches(max_len=50, batch_size=128), epochs=200)
    query = model({"history": tf.constant([["", "50", "172"]])})        # [1, dim + 1]
    ids, scores = model.recommend({"history": tf.constant([["", "50", "172"]])}, k=10)
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core import cross_replica
from tfrecs.core.registration import export
from tfrecs.data.sequence_ids import ITEM_OFFSET, PADDING_ID
from tfrecs.models.base import accidental_hit_mask, float32_policy, summed
from tfrecs.models.sequential import SequentialRetrievalModel, masked_sparse_ce

OBJECTIVES = ("bce", "ce", "sampled_softmax", "gbce", "uniform_softmax")
TARGETS = "targets"


@export("tfrecs.models.SASRec", name="sasrec")
class SASRec(SequentialRetrievalModel):
    """Self-attentive sequential recommender on the TFRS Retrieval base.

    Defaults are the paper's ML-1M settings (Kang & McAuley, 2018: dim 50, 2 blocks, 1 head,
    dropout 0.2, sequence length 200, pre-norm, feed-forward width = dim, tied output), with
    the full-softmax ``"ce"`` objective, which beats the paper's BCE.

    Args:
        item_ids: catalogue raw ids (catalogue order).
        item_counts: training counts per item (popularity fallback; logQ of sampled softmax).
        objective: ``"bce"``, ``"ce"``, ``"sampled_softmax"``, ``"gbce"`` or ``"uniform_softmax"``.
        num_negatives: negatives per training sequence for ``gbce``, per batch for
            ``uniform_softmax`` (``bce`` uses 1).
        gbce_t: gBCE calibration ``t`` in [0, 1] (1 = calibrated to the full softmax).
        dim: item and hidden width.
        max_len: sequence length (positions; longer histories keep their last ``max_len`` items).
        num_blocks, num_heads: transformer blocks and attention heads.
        ffn_dim: feed-forward width (``None``: ``dim``).
        dropout: dropout rate of the embeddings and every block.
        pre_norm: pre-norm blocks (SASRec's code) instead of post-norm.
        tie_output: share the input item table with the output layer (as the paper); ``False``
            gives the output layer (and the candidate tower) its own table.
        temperature: softmax temperature of ``sampled_softmax`` (``None``: 1).
        **kwargs: Keras ``Model`` arguments (``name``).

    Raises:
        ValueError: unknown objective, ``num_negatives < 1`` or ``gbce_t`` outside [0, 1].
    """

    def __init__(
        self,
        item_ids: Sequence,
        item_counts: Optional[Sequence] = None,
        objective: str = "ce",
        num_negatives: int = 128,
        gbce_t: float = 0.75,
        dim: int = 50,
        max_len: int = 200,
        num_blocks: int = 2,
        num_heads: int = 1,
        ffn_dim: Optional[int] = None,
        dropout: float = 0.2,
        pre_norm: bool = True,
        tie_output: bool = True,
        temperature: Optional[float] = None,
        **kwargs,
    ):
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r} is not known; choose one of {OBJECTIVES}")
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        if not 0.0 <= gbce_t <= 1.0:
            raise ValueError(f"gbce_t must be in [0, 1], got {gbce_t}")
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
            temperature=temperature,
            causal=True,
            activation="relu",
            ffn_multiplier=1,
            **kwargs,
        )
        self.objective = objective
        self.num_negatives = int(num_negatives)
        self.gbce_t = float(gbce_t)
        self.logit_bias = None
        if objective in ("bce", "gbce"):
            # One offset for every item's logit, starting at log(1 / k): each position has one
            # positive for k negatives, so the negatives start near their prior probability
            # instead of 0.5 (which would make "push every item down" the whole first phase of
            # training). Rankings, and so the exported towers, are blind to it.
            self.logit_bias = self.add_weight(
                "logit_bias",
                shape=(),
                dtype="float32",
                initializer=tf_keras.initializers.Constant(-np.log(self.negatives)),
            )

    @property
    def negatives(self) -> int:
        """Negatives per position the objective draws: 1 for ``bce``, ``num_negatives`` otherwise."""
        return 1 if self.objective == "bce" else self.num_negatives

    def query_hidden(self, ids, training=False):
        """The last position's hidden state (histories are left-padded)."""
        return self.encode(ids, training=training)[:, -1, :]

    def compute_loss(self, inputs, training=False):
        """This replica's share of the objective, averaged over real target positions."""
        features = self.training_features(inputs, TARGETS, "raw next items")
        ids = self.history_ids(features, self.max_len)
        targets = self.lookup(features[TARGETS])[:, -self.max_len :]
        active = (targets >= ITEM_OFFSET) & (targets < ITEM_OFFSET + self.num_items) & (ids != PADDING_ID)
        encoded = self.encode(ids, training=training)
        hidden, positives = tf.boolean_mask(encoded, active), tf.boolean_mask(targets, active)
        if self.objective == "ce":
            loss = masked_sparse_ce(self.item_logits(hidden), positives)
        elif self.objective == "sampled_softmax":
            loss = self._sampled_softmax(hidden, positives)
        elif self.objective == "uniform_softmax":
            loss = self._uniform_softmax(hidden, positives)
        else:
            loss = self._binary(hidden, positives, encoded, targets, active)
        return self.replica_loss(loss, cross_replica.batch_size(positives))

    def _binary(self, hidden, positives, encoded, targets, active):
        """BCE (one negative per position) or gBCE (k negatives per sequence, positive term raised to beta).

        ``hidden`` / ``positives`` are the real target positions of ``encoded`` / ``targets``
        (``[B, L, ...]``, ``active`` marks them); gBCE scores its negatives on the unmasked form.

        gBCE draws k uniform items per training sequence, shared by its positions: every position
        still sees k uniform negatives (all gBCE's calibration assumes), scored by one
        ``[B, L, k]`` product instead of gathering ``positions x k`` embeddings.
        """
        k = self.negatives
        positive = self.pair_logits(hidden, positives[:, None])[:, 0] + self.logit_bias
        if self.objective == "bce":
            negatives = tf.random.uniform(
                tf.shape(positives), ITEM_OFFSET, ITEM_OFFSET + self.num_items, dtype=tf.int64
            )
            negative = self.pair_logits(hidden, negatives[:, None]) + self.logit_bias
            valid = tf.cast(tf.not_equal(negatives, positives)[:, None], tf.float32)
            beta = 1.0
        else:
            negatives = tf.random.uniform(
                [tf.shape(targets)[0], k], ITEM_OFFSET, ITEM_OFFSET + self.num_items, dtype=tf.int64
            )
            table = tf.cast(self.output_embedding(negatives), tf.float32)  # [B, k, d]
            negative = tf.einsum("bld,bkd->blk", tf.cast(encoded, tf.float32), table) + self.logit_bias
            negative = tf.boolean_mask(negative, active)  # [N, k]
            valid = tf.cast(
                tf.boolean_mask(tf.not_equal(negatives[:, None, :], targets[:, :, None]), active), tf.float32
            )
            alpha = k / max(self.num_items - 1, 1)
            beta = alpha * (self.gbce_t * (1.0 - 1.0 / alpha) + 1.0 / alpha)
        return tf.reduce_sum(beta * tf.nn.softplus(-positive)) + tf.reduce_sum(tf.nn.softplus(negative) * valid)

    def _uniform_softmax(self, hidden, positives):
        """Cross-entropy of each position's target against ``num_negatives`` uniform items shared by the
        batch (one ``[N, k]`` product); a negative equal to the position's target is masked out."""
        negatives = tf.random.uniform([self.num_negatives], ITEM_OFFSET, ITEM_OFFSET + self.num_items, dtype=tf.int64)
        positive = self.pair_logits(hidden, positives[:, None])  # [N, 1]
        negative = self.pair_logits(hidden[:, None, :], negatives[None, None, :])[:, 0, :]  # [N, k]
        negative = tf.where(tf.equal(negatives[None, :], positives[:, None]), -1e9, negative)
        logits = tf.concat([positive, negative], axis=1)
        labels = tf.zeros_like(positives)
        return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

    def _sampled_softmax(self, hidden, targets):
        """In-batch softmax of the base's Retrieval task, logQ-corrected, hits masked by id."""
        candidates = tf.cast(self.output_embedding(targets), tf.float32)
        probabilities = tf.gather(self.sampling_probability, targets)
        ids = targets
        if self.cross_replica_negatives:
            candidates, ids, probabilities = cross_replica.gather_candidates(candidates, ids, probabilities)
        mask = accidental_hit_mask(ids, tf.shape(hidden)[0])
        with float32_policy():
            loss = self.task(
                tf.cast(hidden, tf.float32),
                candidates,
                candidate_sampling_probability=probabilities,
                compute_metrics=False,
                compute_batch_metrics=False,
                score_mask=mask,
            )
        return summed(loss)
