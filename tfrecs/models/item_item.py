"""Item-item baselines fitted in closed form: EASE (Steck 2019) and ItemKNN (cosine).

Both score a user by ``x_u W``: ``x_u`` is the multi-hot vector of the user's items (the
raw ids of a ``history`` input) and ``W`` an item x item matrix computed from the training
Gram matrix ``G = X^T X`` in one pass over the data. They follow the retrieval contract:
``call`` returns the query vector ``x_u`` ([batch, num_items], float32), ``catalogue()``
returns the raw item ids with the columns of ``W`` as candidate vectors, so ``recommend``,
the evaluation protocols and brute-force exports work as for any retrieval model.

``fit`` is Keras' entry point but closed form: one pass over the batches accumulates ``G``
(epochs, optimizers and callbacks do not apply), then ``W`` is solved. ``solve()`` re-solves
from the kept Gram matrix after a hyper-parameter change (a regularisation search costs one
pass over the data).

Example::

    model = EASE(item_ids, l2=300.0)
    model.fit(tf.data.Dataset.from_tensor_slices({"history": histories}).batch(256))
    ids, scores = model.recommend({"history": histories[:2]}, k=10, exclude=histories[:2])
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export
from tfrecs.layers.item_lookup import ItemLookup
from tfrecs.models.base import Features, Recommender, require_inputs


class ItemItemModel(Recommender, ConfigFromInit, tf_keras.Model):
    """Base of the closed-form item-item models: multi-hot histories times an item-item matrix.

    Args:
        item_ids: the catalogue's raw ids (catalogue order).
        history_key: the input feature holding each user's raw item ids (padded with ``""``
            or ``-1``; ids outside the catalogue are ignored).

    Subclasses implement ``item_matrix(gram) -> [num_items, num_items]`` in NumPy.
    """

    def __init__(self, item_ids: Sequence, history_key: str = "history", **kwargs):
        super().__init__(**kwargs)
        self.lookup = ItemLookup(item_ids, name="item_lookup")
        self.item_ids = self.lookup.item_ids
        self.history_key = history_key
        self.num_items = len(self.item_ids)
        self.item_matrix_weight = self.add_weight(
            name="item_item", shape=(self.num_items, self.num_items), initializer="zeros", trainable=False
        )
        self.gram: Optional[np.ndarray] = None

    def item_matrix(self, gram: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def call(self, features: Features, training: bool = False) -> tf.Tensor:
        """``[batch, num_items]`` float32 multi-hot vectors of the histories."""
        require_inputs(
            type(self).__name__,
            features,
            [self.history_key],
            how="Give each user's item ids, padded, e.g. with tfrecs.data.histories.user_histories.",
        )
        ids = self.lookup(features[self.history_key])  # 0 padding, 1..n items, n+2 OOV
        items = tf.one_hot(ids - 1, self.num_items, dtype=tf.float32)  # padding and OOV -> all zeros
        return tf.minimum(tf.reduce_sum(items, axis=-2), 1.0)

    def catalogue(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """Raw item ids and the columns of the item-item matrix (``scores = x_u W``)."""
        return tf.constant(self.item_ids), tf.transpose(self.item_matrix_weight)

    def scores(self, features: Features) -> tf.Tensor:
        """``[batch, num_items]`` scores in catalogue order."""
        return tf.matmul(self(features), self.item_matrix_weight)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, **kwargs):
        """One pass over ``x`` (a ``tf.data`` of feature dicts, or one dict) accumulates the Gram matrix, then solves.

        Returns:
            a Keras ``History`` with one entry, ``num_users`` (rows seen).
        """
        batches = x if isinstance(x, tf.data.Dataset) else tf.data.Dataset.from_tensors(x)
        gram = np.zeros((self.num_items, self.num_items), dtype=np.float64)
        rows = 0
        for batch in batches:
            features = batch[0] if isinstance(batch, tuple) else batch
            multi_hot = self(features).numpy().astype(np.float64)
            gram += multi_hot.T @ multi_hot
            rows += len(multi_hot)
        if rows == 0:
            raise ValueError(f"{type(self).__name__}.fit: the data set has no rows")
        self.gram = gram
        self.solve()
        history = tf_keras.callbacks.History()
        history.set_model(self)
        history.on_train_begin()
        history.on_epoch_end(0, {"num_users": float(rows)})
        return history

    def solve(self) -> None:
        """(Re)computes the item-item matrix from the kept Gram matrix (after ``fit``)."""
        if self.gram is None:
            raise ValueError(f"{type(self).__name__}.solve: call fit first (it accumulates the Gram matrix)")
        matrix = self.item_matrix(self.gram)
        np.fill_diagonal(matrix, 0.0)
        self.item_matrix_weight.assign(matrix.astype(np.float32))


@export("tfrecs.models.EASE", name="ease")
class EASE(ItemItemModel):
    """EASE (Steck 2019): ``W = I - P / diag(P)`` with ``P = (G + l2 I)^-1``, zero diagonal.

    Args:
        item_ids: the catalogue's raw ids.
        l2: the L2 regularisation ``lambda`` (Steck: 500 on ML-20M; choose it on validation,
            e.g. with ``tfrecs train --model ease``, which searches a grid).
        history_key: see ``ItemItemModel``.

    Example::

        model = EASE(item_ids, l2=300.0)
    """

    def __init__(self, item_ids: Sequence, l2: float = 500.0, history_key: str = "history", **kwargs):
        if not l2 > 0:
            raise ValueError(f"EASE: l2 must be > 0, got {l2}")
        super().__init__(item_ids, history_key=history_key, **kwargs)
        self.l2 = float(l2)

    def item_matrix(self, gram: np.ndarray) -> np.ndarray:
        regularised = gram + self.l2 * np.eye(len(gram))
        precision = np.linalg.inv(regularised)
        return -precision / np.diag(precision)[None, :]


@export("tfrecs.models.ItemKNN", name="itemknn")
class ItemKNN(ItemItemModel):
    """Item-based k-nearest neighbours: cosine similarity, the ``neighbours`` most similar items kept.

    ``sim(i, j) = G_ij / (sqrt(G_ii G_jj) + shrink)``; for each item ``j`` only its
    ``neighbours`` most similar items keep their similarity (as RecBole's ItemKNN).

    Args:
        item_ids: the catalogue's raw ids.
        neighbours: neighbourhood size (>= 1).
        shrink: added to the cosine denominator (damps pairs with little support).
        history_key: see ``ItemItemModel``.

    Example::

        model = ItemKNN(item_ids, neighbours=100)
    """

    def __init__(
        self, item_ids: Sequence, neighbours: int = 100, shrink: float = 0.0, history_key: str = "history", **kwargs
    ):
        if neighbours < 1:
            raise ValueError(f"ItemKNN: neighbours must be >= 1, got {neighbours}")
        if shrink < 0:
            raise ValueError(f"ItemKNN: shrink must be >= 0, got {shrink}")
        super().__init__(item_ids, history_key=history_key, **kwargs)
        self.neighbours = int(neighbours)
        self.shrink = float(shrink)

    def item_matrix(self, gram: np.ndarray) -> np.ndarray:
        norms = np.sqrt(np.diag(gram))
        similarity = gram / (norms[:, None] * norms[None, :] + self.shrink + 1e-12)
        np.fill_diagonal(similarity, 0.0)
        keep = min(self.neighbours, len(gram) - 1)
        if keep < len(gram) - 1:
            # Per column j: zero all but the `keep` largest similarities.
            cutoff = np.partition(similarity, len(gram) - keep, axis=0)[len(gram) - keep]
            similarity = np.where(similarity >= cutoff[None, :], similarity, 0.0)
        return similarity
