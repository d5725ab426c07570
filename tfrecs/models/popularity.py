"""Most-popular baseline: every user gets the items with the most training interactions.

Example::

    pop = Popularity.from_dataset(split.train)
    scores = pop(tf.constant([0, 1]))  # [2, num_items], the same row for every user
"""
import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.data.dataset import RecDataset
from tfrecs.core.registration import export


@export("tfrecs.models.Popularity", name="pop")
class Popularity(tf_keras.Model):
    """Scores each item by its training interaction count (a floor for every results table).

    Args:
        item_counts: training interactions per catalogue item, ``[num_items]``.
    """

    def __init__(self, item_counts: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        item_counts = np.asarray(item_counts, dtype=np.float32)
        if item_counts.ndim != 1 or len(item_counts) == 0:
            raise ValueError(f"item_counts must be a non-empty vector, got shape {item_counts.shape}")
        self.item_counts = tf.Variable(item_counts, trainable=False, name="item_counts")

    @classmethod
    def from_dataset(cls, train: RecDataset) -> "Popularity":
        """Counts ``train``'s interactions per item of its catalogue."""
        counts = np.bincount(train.item_indices(), minlength=train.num_items)
        return cls(counts)

    def call(self, user_indices: tf.Tensor) -> tf.Tensor:
        """Returns ``[batch, num_items]`` float32 scores (counts) for any user indices."""
        batch = tf.shape(user_indices)[0]
        return tf.tile(self.item_counts[tf.newaxis, :], tf.stack([batch, 1]))
