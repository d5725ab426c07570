"""Tiny models and synthetic data shared by the training tests and their worker scripts.

Import ``tfrecs`` before this module (it imports TensorFlow). A few hundred parameters each,
so a step takes milliseconds and every test stays well inside its time budget.
"""

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.models.base import RankingModel, RetrievalModel, ranking_task

NUM_USERS = 20
NUM_ITEMS = 30
DIM = 4


def interactions(n: int, seed: int = 0) -> dict:
    """Synthetic user-item rows with a learnable label: 1 when the user's and item's parity agree."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, NUM_USERS, size=n).astype(np.int32)
    items = rng.integers(0, NUM_ITEMS, size=n).astype(np.int32)
    label = ((users % 2) == (items % 2)).astype(np.float32)
    rating = (1.0 + 0.1 * (users % 5) + 0.2 * (items % 3)).astype(np.float32)
    return {"user_id": users, "item_id": items, "label": label, "rating": rating}


def dataset(rows: dict, batch_size: int) -> tf.data.Dataset:
    """Unshuffled batched dataset of feature dicts (the same order on every iteration)."""
    return tf.data.Dataset.from_tensor_slices(rows).batch(batch_size)


class TinyRanking(RankingModel):
    """Embeddings -> small MLP -> one logit per task (binary ``label``, optionally ``rating``)."""

    def __init__(self, tasks=None, loss_weights=None):
        super().__init__(tasks=tasks, loss_weights=loss_weights)
        self.user_embedding = tf_keras.layers.Embedding(NUM_USERS, DIM)
        self.item_embedding = tf_keras.layers.Embedding(NUM_ITEMS, DIM)
        self.hidden = tf_keras.layers.Dense(8, activation="relu")
        self.heads = {name: tf_keras.layers.Dense(1, name=f"head_{name}") for name in self.task_names}

    def call(self, features, training=False):
        x = tf.concat([self.user_embedding(features["user_id"]), self.item_embedding(features["item_id"])], axis=1)
        x = self.hidden(x)
        logits = {name: head(x) for name, head in self.heads.items()}
        return logits if len(logits) > 1 else logits[self.task_names[0]]


def two_task_ranking(loss_weights=None) -> TinyRanking:
    """TinyRanking with a binary ``label`` task and a ``rating`` regression task."""
    tasks = {
        "label": ranking_task("binary", metric_prefix="label/"),
        "rating": ranking_task("regression", metric_prefix="rating/"),
    }
    return TinyRanking(tasks=tasks, loss_weights=loss_weights or {"label": 1.0, "rating": 0.5})


class TinyRetrieval(RetrievalModel):
    """User embedding -> dense query tower; item embedding candidate tower."""

    def __init__(self, cross_replica_negatives=True, candidate_id_key="item_id", task=None):
        super().__init__(task=task, cross_replica_negatives=cross_replica_negatives, candidate_id_key=candidate_id_key)
        self.query_tower = tf_keras.Sequential([tf_keras.layers.Embedding(NUM_USERS, DIM), tf_keras.layers.Dense(DIM)])
        self.candidate_tower = tf_keras.layers.Embedding(NUM_ITEMS, DIM)

    def compute_query_embeddings(self, features, training=False):
        return self.query_tower(features["user_id"], training=training)

    def compute_candidate_embeddings(self, features, training=False):
        return self.candidate_tower(features["item_id"], training=training)
