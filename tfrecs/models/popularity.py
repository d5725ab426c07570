"""Most-popular baseline: every user gets the items with the most training interactions.

Example::

    pop = Popularity.from_dataset(split.train)
    scores = pop(tf.constant([0, 1]))  # [2, num_items], the same row for every user
    ids, counts = pop.recommend(tf.constant([0]), k=10)
"""

from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export
from tfrecs.data.dataset import RecDataset
from tfrecs.models.base import excluded_positions


@export("tfrecs.models.Popularity", name="pop")
class Popularity(ConfigFromInit, tf_keras.Model):
    """Scores each item by its training interaction count (a floor for every results table).

    Args:
        item_counts: training interactions per catalogue item, ``[num_items]`` (a list or
            array; kept in the config, so the model reloads from it alone).
        item_ids: raw ids of the catalogue items, in the same order (``recommend`` returns
            them; default: the catalogue indices ``0..num_items-1``).

    Raises:
        ValueError: ``item_counts`` is empty or not a vector, or ``item_ids`` has another length.

    Example::

        pop = Popularity([5, 0, 2], item_ids=["a", "b", "c"])
        pop.recommend(tf.constant([7]), k=2)[0]      # [[b"a", b"c"]]
    """

    def __init__(self, item_counts: Sequence[float], item_ids: Optional[Sequence] = None, **kwargs):
        super().__init__(**kwargs)
        counts = np.asarray(item_counts, dtype=np.float32)
        if counts.ndim != 1 or len(counts) == 0:
            raise ValueError(f"item_counts must be a non-empty vector, got shape {counts.shape}")
        if item_ids is not None and len(item_ids) != len(counts):
            raise ValueError(f"item_ids has {len(item_ids)} entries but item_counts {len(counts)}")
        self.item_counts = counts.tolist()
        self.item_ids = None if item_ids is None else np.asarray(item_ids).tolist()
        self.counts = self.add_weight(
            name="item_counts", shape=counts.shape, trainable=False, initializer=tf_keras.initializers.Constant(counts)
        )

    @classmethod
    def from_dataset(cls, train: RecDataset) -> "Popularity":
        """Counts ``train``'s interactions per item of its catalogue (raw ids kept for ``recommend``)."""
        counts = np.bincount(train.item_indices(), minlength=train.num_items)
        return cls(counts, item_ids=np.asarray(train.item_index.ids))

    def call(self, user_indices: Any) -> tf.Tensor:
        """``[batch, num_items]`` float32 scores (counts) for any batch of users.

        Args:
            user_indices: ``[batch]`` user indices or ids (only the batch size is read), or a
                dict of such batched features.
        """
        if isinstance(user_indices, Mapping):
            user_indices = next(iter(user_indices.values()))
        batch = tf.shape(user_indices)[0]
        return tf.tile(self.counts[tf.newaxis, :], tf.stack([batch, 1]))

    def recommend(self, inputs: Any, k: int = 10, exclude: Any = None) -> Tuple[tf.Tensor, tf.Tensor]:
        """The ``k`` most popular raw item ids (and counts) per query row, ``exclude`` left out.

        Raises:
            ValueError: ``k < 1``.
        """
        if k < 1:
            raise ValueError(f"recommend: k must be >= 1, got {k}")
        ids = tf.constant(np.asarray(self.item_ids) if self.item_ids is not None else np.arange(len(self.item_counts)))
        scores = self(inputs)
        if exclude is not None:
            scores = tf.where(excluded_positions(ids, exclude, tf.shape(scores)[0]), -float("inf"), scores)
        top = tf.math.top_k(scores, k=min(int(k), len(self.item_counts)))
        return tf.gather(ids, top.indices), top.values
