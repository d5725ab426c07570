"""Replica-aware helpers: global batch size, loss normalisation and candidate gathering.

Every function here works in three places alike: with no strategy, inside
``strategy.run`` (a replica context) and in a cross-replica context (a model called directly
under ``strategy.scope()``), where it behaves as on one device.

The rule the base models follow: each replica sums its examples' losses and divides by the
*global* batch size; the optimizer sums gradients over replicas. One replica and N replicas
then take the same step for the same global batch, even when the last batch splits unevenly.
"""

from typing import Optional, Sequence, Tuple

import tensorflow as tf


def _replica_context() -> Optional[tf.distribute.ReplicaContext]:
    """The current replica context, or None in a cross-replica context."""
    return tf.distribute.get_replica_context()


def num_replicas() -> int:
    """Replicas that take part in the current step (1 outside a strategy or replica context)."""
    context = _replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def batch_size(tensor: tf.Tensor) -> tf.Tensor:
    """Size of ``tensor``'s first dimension as a float32 scalar."""
    return tf.cast(tf.shape(tensor)[0], tf.float32)


def global_batch_size(local_batch_size: tf.Tensor) -> tf.Tensor:
    """Sum of the local batch sizes over all replicas (float32 scalar).

    Exact for uneven splits (a last batch of 7 over 2 replicas gives 7, not 8).

    Example::

        global_b = global_batch_size(batch_size(features["label"]))
    """
    local = tf.cast(local_batch_size, tf.float32)
    context = _replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return local
    return context.all_reduce(tf.distribute.ReduceOp.SUM, local)


def per_replica_loss(loss_sum: tf.Tensor, global_batch: tf.Tensor) -> tf.Tensor:
    """This replica's share of the loss: its summed example losses over the global batch size.

    A replica holding no examples (an uneven last batch) contributes 0, not NaN.
    """
    return tf.math.divide_no_nan(tf.cast(loss_sum, tf.float32), tf.cast(global_batch, tf.float32))


def regularization_share(losses: Sequence[tf.Tensor]) -> tf.Tensor:
    """This replica's share of the regularization losses (``sum(losses) / num_replicas``)."""
    if not losses:
        return tf.constant(0.0, tf.float32)
    total = tf.add_n([tf.cast(tf.reduce_sum(x), tf.float32) for x in losses])
    return total / float(num_replicas())


def gather_candidates(
    embeddings: tf.Tensor,
    ids: Optional[tf.Tensor] = None,
    sampling_probability: Optional[tf.Tensor] = None,
) -> Tuple[tf.Tensor, Optional[tf.Tensor], Optional[tf.Tensor]]:
    """All-gathers candidate embeddings (and ids, sampling probabilities) from every replica.

    The result starts with this replica's own rows, in order, followed by the other replicas'
    rows, so row ``i`` is still the positive of local query ``i`` and a TFRS ``Retrieval`` task
    treats every other row, from any replica, as a negative. Gradients flow back to the replica
    that produced each row. With one replica the inputs come back unchanged.

    Args:
        embeddings: ``[local_batch, dim]`` candidate embeddings of this replica.
        ids: optional ``[local_batch]`` candidate ids (for accidental-hit removal); with more
            than one replica they come back as int64 keys (see ``id_keys``).
        sampling_probability: optional ``[local_batch]`` sampling probabilities.

    Returns:
        ``(embeddings, ids, sampling_probability)`` with ``global_batch`` rows each (``None``
        stays ``None``).

    Example::

        # inside a train step run by MirroredStrategy with 2 replicas of 4 examples
        cands, cand_ids, _ = gather_candidates(cands, cand_ids)   # 8 rows, local first
    """
    context = _replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return embeddings, ids, sampling_probability
    if ids is not None:
        ids = id_keys(ids)

    local_size = tf.shape(embeddings)[0:1]
    sizes = context.all_gather(local_size, axis=0)
    offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    total = tf.reduce_sum(sizes)
    # Rolling by -offset puts this replica's rows first; positions stay in [0, total).
    shift = tf.math.floormod(-offset, tf.maximum(total, 1))

    def gather(value: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
        if value is None:
            return None
        return tf.roll(context.all_gather(value, axis=0), shift=shift, axis=0)

    return gather(embeddings), gather(ids), gather(sampling_probability)


def id_keys(ids: tf.Tensor) -> tf.Tensor:
    """Integer keys for candidate ids, so they can cross replicas: strings are fingerprinted.

    Only equality matters (accidental-hit removal), so a 64-bit fingerprint is enough.
    """
    ids = tf.convert_to_tensor(ids)
    if ids.dtype == tf.string:
        return tf.strings.to_hash_bucket_fast(ids, 2**63 - 1)
    return tf.cast(ids, tf.int64)
