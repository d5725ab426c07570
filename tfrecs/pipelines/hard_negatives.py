"""Hard negatives mined from a model's own scores, refreshed on a schedule while training.

``HardNegativeMiner`` scores every candidate for every user with the current query model
and candidate embeddings (exact: a TF matmul + ``top_k``, or a TFRS ``BruteForce``
index), drops each user's positives, and keeps the ``K`` highest-scored items in a
``[num_users, K]`` variable. ``add_hard_negatives`` gathers from that variable inside the
``tf.data`` pipeline, so a refresh is seen by the next batches without rebuilding the
pipeline (batches already prefetched keep the previous negatives).
``HardNegativeRefresh`` is the Keras callback that refreshes every N epochs or steps.

For in-batch hard negatives (the hardest of the batch's other candidates), use TFRS's
``Retrieval(num_hard_negatives=n)`` instead, e.g. ``tfrecs.models.base.retrieval_task(
num_hard_negatives=n)``; the two combine.

Example::

    miner = HardNegativeMiner(
        query_fn=lambda users: model.compute_query_embeddings({"user_id": users}),
        candidates=lambda: model.compute_candidate_embeddings({"item_id": tf.range(num_items)}),
        num_users=num_users, num_negatives=5, exclude=PositiveIndex.from_dataset(train))
    ds = add_hard_negatives(train_batches, miner)         # adds "hard_negative_item_id" [B, 5]
    model.fit(ds, epochs=10, callbacks=[HardNegativeRefresh(miner, every_epochs=2)])
"""

from typing import Callable, Optional, Union

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.pipelines.negative_sampling import PositiveIndex, SamplingError
from tfrecs.pipelines.transforms import check_batch_keys

METHODS = ("matmul", "brute_force")
HARD_NEGATIVE_KEY = "hard_negative_item_id"

Embeddings = Union[tf.Tensor, np.ndarray, Callable[[], tf.Tensor]]


class HardNegativeMiner:
    """Each user's ``num_negatives`` highest-scored items that are not its positives.

    Args:
        query_fn: ``[B]`` int64 user indices -> ``[B, dim]`` query embeddings.
        candidates: ``[num_items, dim]`` candidate embeddings, or a callable returning them
            (called at each refresh, so a training candidate tower is re-read).
        num_users: users in the table (dense indices ``0..num_users-1``).
        num_negatives: ``K`` negatives kept per user.
        exclude: positives never returned (``PositiveIndex.from_dataset(train)``).
        method: ``"matmul"`` (scores, positives set to -inf, ``top_k``) or ``"brute_force"``
            (a TFRS ``BruteForce`` layer retrieving ``K + max positives`` then filtering).
        batch_size: users scored per step of a refresh.

    Raises:
        SamplingError: some user has fewer than ``K`` non-positive items.
    """

    def __init__(
        self,
        query_fn: Callable[[tf.Tensor], tf.Tensor],
        candidates: Embeddings,
        num_users: int,
        num_negatives: int,
        exclude: Optional[PositiveIndex] = None,
        method: str = "matmul",
        batch_size: int = 1024,
    ):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if num_negatives < 1 or num_users < 1:
            raise ValueError(f"num_negatives and num_users must be >= 1, got {num_negatives} and {num_users}")
        self.query_fn, self._candidates = query_fn, candidates
        self.num_users, self.num_negatives, self.exclude = int(num_users), int(num_negatives), exclude
        self.method, self.batch_size = method, int(batch_size)
        self.num_items = int(self._candidate_embeddings().shape[0])
        if exclude is not None:
            if exclude.num_items != self.num_items:
                raise ValueError(f"exclude covers {exclude.num_items} items, the candidates {self.num_items}")
            fewest = self.num_items - int(exclude.counts.max(initial=0))
        else:
            fewest = self.num_items
        if fewest < self.num_negatives:
            raise SamplingError(
                f"a catalogue of {self.num_items} items cannot supply {self.num_negatives} hard "
                f"negatives: some user has only {fewest} items it has not interacted with"
            )
        self.table = tf.Variable(
            tf.zeros([self.num_users, self.num_negatives], tf.int64), trainable=False, name="hard_negatives"
        )
        self.refreshes = 0

    def _candidate_embeddings(self) -> tf.Tensor:
        values = self._candidates() if callable(self._candidates) else self._candidates
        return tf.cast(tf.convert_to_tensor(values), tf.float32)

    def _positive_mask(self, users: tf.Tensor) -> tf.Tensor:
        """``[B, num_items]`` True at each user's positives."""
        if self.exclude is None:
            return tf.zeros([tf.size(users), self.num_items], tf.bool)
        rows, items = self.exclude.pairs_of(users)
        return tf.scatter_nd(
            tf.stack([rows, items], axis=1),
            tf.ones_like(items, tf.bool),
            tf.stack([tf.size(users, out_type=tf.int64), tf.constant(self.num_items, tf.int64)]),
        )

    def mine(self, users, candidates: Optional[tf.Tensor] = None) -> tf.Tensor:
        """``[B, K]`` hard negatives of ``users`` (highest score first) under the current model."""
        users = tf.cast(tf.convert_to_tensor(users), tf.int64)
        candidates = self._candidate_embeddings() if candidates is None else candidates
        queries = tf.cast(self.query_fn(users), tf.float32)
        if self.method == "matmul":
            scores = tf.matmul(queries, candidates, transpose_b=True)
            scores = tf.where(self._positive_mask(users), tf.constant(-np.inf, tf.float32), scores)
            return tf.cast(tf.math.top_k(scores, k=self.num_negatives).indices, tf.int64)
        return self._mine_brute_force(users, queries, candidates)

    def _mine_brute_force(self, users, queries, candidates):
        import tensorflow_recommenders as tfrs

        extra = int(self.exclude.counts.max(initial=0)) if self.exclude is not None else 0
        k = min(self.num_items, self.num_negatives + extra)
        index = tfrs.layers.factorized_top_k.BruteForce(k=k)
        index.index(candidates, tf.range(self.num_items, dtype=tf.int64))
        scores, ids = index(queries, k=k)
        if self.exclude is not None:
            hits = self.exclude.contains(tf.broadcast_to(users[:, None], tf.shape(ids)), ids)
            scores = tf.where(hits, tf.constant(-np.inf, scores.dtype), scores)
        best = tf.math.top_k(scores, k=self.num_negatives).indices  # stable: keeps the index's order on ties
        return tf.gather(tf.cast(ids, tf.int64), best, batch_dims=1)

    def refresh(self) -> None:
        """Re-mines every user's negatives with the current weights into ``self.table``."""
        candidates = self._candidate_embeddings()
        for start in range(0, self.num_users, self.batch_size):
            users = tf.range(start, min(start + self.batch_size, self.num_users), dtype=tf.int64)
            self.table.scatter_nd_update(users[:, None], self.mine(users, candidates))
        self.refreshes += 1

    def lookup(self, users: tf.Tensor) -> tf.Tensor:
        """The mined negatives of ``users`` from the last refresh."""
        return tf.gather(self.table, tf.cast(users, tf.int64))


class HardNegativeRefresh(tf_keras.callbacks.Callback):
    """Refreshes a ``HardNegativeMiner`` at the start of training and then every
    ``every_epochs`` epochs (at epoch start) or every ``every_steps`` training steps.

    Example::

        model.fit(ds, epochs=6, callbacks=[HardNegativeRefresh(miner, every_epochs=2)])
    """

    def __init__(self, miner: HardNegativeMiner, every_epochs: Optional[int] = 1, every_steps: Optional[int] = None):
        super().__init__()
        if (every_epochs is None) == (every_steps is None):
            raise ValueError("give exactly one of every_epochs and every_steps")
        if (every_epochs or every_steps) < 1:
            raise ValueError(f"the refresh interval must be >= 1, got {every_epochs or every_steps}")
        self.miner, self.every_epochs, self.every_steps = miner, every_epochs, every_steps
        self._steps = 0

    def on_train_begin(self, logs=None):
        self.miner.refresh()

    def on_epoch_begin(self, epoch, logs=None):
        if self.every_epochs and epoch > 0 and epoch % self.every_epochs == 0:
            self.miner.refresh()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.every_steps and self._steps % self.every_steps == 0:
            self.miner.refresh()


def add_hard_negatives(
    dataset: tf.data.Dataset, miner: HardNegativeMiner, user_key: str = "user_id", key: str = HARD_NEGATIVE_KEY
) -> tf.data.Dataset:
    """Adds ``[B, K]`` mined negatives (``miner.table`` rows of each batch's users).

    Example::

        ds = add_hard_negatives(ds, miner)   # batch["hard_negative_item_id"]: [B, K]
    """
    check_batch_keys(dataset, user_key)

    def add(batch):
        out = dict(batch)
        out[key] = miner.lookup(batch[user_key])
        return out

    return dataset.map(add, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
