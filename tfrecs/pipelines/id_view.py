"""``IdData``: the id-only view of a split that NCF and LightGCN train on.

A ``Split`` plus an id-only ``FeatureSpec`` (``user_id``, ``item_id``) fitted on its training
part, the catalogue's raw ids (row = dense index), and the ``tf.data`` pipelines: negatives
are sampled on dense indices (``tfrecs.pipelines.negative_sampling``) and the batches hand
the model RAW ids, as every tfrecs model reads them.

Example::

    data = IdData.from_split(make_split(load_dataset("ml-100k"), "random", seed=2020))
    model = NeuMF(data.spec)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(data.batches(256, num_negatives=4, output="pointwise"), epochs=5)
    scores = data.score_fn(model)(tf.constant([0, 1]))        # [2, num_items], catalogue order
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import ITEM_ID, USER_ID, joined_columns
from tfrecs.data.feature_spec import Feature, FeatureSpec
from tfrecs.data.histories import id_dtype
from tfrecs.data.splits import Split
from tfrecs.pipelines.negative_sampling import (
    DEFAULT_ALPHA,
    PopularitySampler,
    PositiveIndex,
    UniformSampler,
    item_counts,
    sample_negatives,
)
from tfrecs.pipelines.transforms import epoch_shuffled_batches

NEGATIVE_KEY = "negative_item_id"
SAMPLERS = ("uniform", "popularity")
ScoreFn = Callable[[tf.Tensor], tf.Tensor]


def factorized_score_fn(user_vectors, item_vectors) -> ScoreFn:
    """``user indices [B] -> [B, num_items]``: dot products of each user's vector with every item's.

    Args:
        user_vectors: ``[num_users, d]``, row = user index (numpy or tensor).
        item_vectors: ``[num_items, d]``, row = item index.

    Raises:
        ValueError: the two sides differ in size.

    Example::

        factorized_score_fn(np.eye(2), np.ones((3, 2)))(tf.constant([1]))   # [[1., 1., 1.]]
    """
    users = tf.convert_to_tensor(user_vectors, tf.float32)
    items = tf.convert_to_tensor(item_vectors, tf.float32)
    if users.shape[-1] != items.shape[-1]:
        raise ValueError(f"user and item vectors differ in size: {users.shape[-1]} vs {items.shape[-1]}")

    def score(user_indices: tf.Tensor) -> tf.Tensor:
        return tf.matmul(tf.gather(users, user_indices), items, transpose_b=True)

    return score


@dataclass
class IdData:
    """A split with an id-only ``FeatureSpec`` (user_id, item_id) and the catalogue's raw ids.

    Attributes:
        split: the data split (e.g. per-user random for the ``random-full`` protocol).
        spec: ``FeatureSpec`` of ``user_id`` and ``item_id`` fitted on the training split.
        user_ids, item_ids: raw ids of every catalogue user / item (row = dense index).
    """

    split: Split
    spec: FeatureSpec
    user_ids: np.ndarray
    item_ids: np.ndarray

    @classmethod
    def from_split(cls, split: Split) -> "IdData":
        """Fits the id spec on ``split.train`` (int64 or string ids, as the data set stores them)."""
        train = split.train
        user_ids, item_ids = np.asarray(train.user_index.ids), np.asarray(train.item_index.ids)
        spec = FeatureSpec(
            [
                Feature(USER_ID, "categorical", dtype=id_dtype(user_ids)),
                Feature(ITEM_ID, "categorical", dtype=id_dtype(item_ids)),
            ]
        ).fit(joined_columns(train))
        return cls(split, spec, user_ids, item_ids)

    @property
    def item_titles(self) -> Optional[np.ndarray]:
        """Titles in catalogue order, when the item table has them."""
        items = self.split.train.items
        return np.asarray(items["title"]) if items is not None and "title" in items else None

    def sampler(self, kind: str = "uniform", alpha: float = DEFAULT_ALPHA):
        """Negative sampler over the catalogue that never returns a user's training items.

        Raises:
            ValueError: unknown ``kind``.
        """
        if kind not in SAMPLERS:
            raise ValueError(f"negative_sampler={kind!r} is not known; choose one of {SAMPLERS}")
        exclude = PositiveIndex.from_dataset(self.split.train)
        if kind == "uniform":
            return UniformSampler(self.split.train.num_items, exclude=exclude)
        return PopularitySampler(item_counts(self.split.train), alpha=alpha, exclude=exclude)

    def batches(
        self,
        batch_size: int,
        num_negatives: int = 4,
        output: str = "pointwise",
        sampler: str = "uniform",
        alpha: float = DEFAULT_ALPHA,
        seed: int = 0,
        max_positives: Optional[int] = None,
    ) -> tf.data.Dataset:
        """Training batches of RAW ids with sampled negatives, reshuffled every epoch.

        Args:
            batch_size: rows per batch after sampling (pointwise: ``positives * (K + 1)``;
                pairwise: BPR triples).
            num_negatives: ``K`` negatives per positive.
            output: ``"pointwise"`` (``user_id``, ``item_id``, ``label``) or ``"pairwise"``
                (``user_id``, ``item_id``, ``negative_item_id``).
            sampler, alpha: ``"uniform"`` or ``"popularity"`` (``count ** alpha``).
            seed: seed of the shuffle and the negative draws.
            max_positives: use only the first this many training interactions (quick runs).
        """
        per_batch = max(1, batch_size // (num_negatives + 1 if output == "pointwise" else num_negatives))
        sampled = sample_negatives(
            self._positives(per_batch, seed, max_positives),
            self.sampler(sampler, alpha),
            num_negatives=num_negatives,
            output=output,
            seed=seed,
            negative_key=NEGATIVE_KEY,
        )
        return self._raw(sampled)

    def positive_batches(self, batch_size: int, seed: int = 0, max_positives: Optional[int] = None) -> tf.data.Dataset:
        """Training (user_id, item_id) positives as RAW ids, reshuffled every epoch (in-batch softmax)."""
        return self._raw(self._positives(batch_size, seed, max_positives))

    def _positives(self, batch_size: int, seed: int, max_positives: Optional[int]) -> tf.data.Dataset:
        train = self.split.train
        users, items = train.user_indices()[:max_positives], train.item_indices()[:max_positives]
        # The order of each epoch is a function of (seed, epoch): a resumed run reads what an unbroken one does.
        return epoch_shuffled_batches({USER_ID: users, ITEM_ID: items}, batch_size, seed)

    def _raw(self, batches: tf.data.Dataset) -> tf.data.Dataset:
        """Dense user / item indices of each batch replaced by the raw ids the models read."""
        tables = {
            USER_ID: tf.constant(self.user_ids),
            ITEM_ID: tf.constant(self.item_ids),
            NEGATIVE_KEY: tf.constant(self.item_ids),
        }

        def to_raw(batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
            return {key: tf.gather(tables[key], value) if key in tables else value for key, value in batch.items()}

        return batches.map(to_raw, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def score_fn(self, model: Any, users_per_chunk: int = 64) -> ScoreFn:
        """``user indices [B] -> [B, num_items]`` scores of every catalogue item (catalogue order).

        A model with ``score_candidates(user_ids, item_ids)`` (NeuMF: not factorised) is scored
        pair by pair in chunks of ``users_per_chunk`` users; any other model by the dot products
        of its query (``model(features)``) and candidate (``model.candidate_embeddings``) vectors.
        """
        items = tf.constant(self.item_ids)
        if not hasattr(model, "score_candidates"):
            users = model({USER_ID: tf.constant(self.user_ids)}, training=False)
            return factorized_score_fn(users, model.candidate_embeddings({ITEM_ID: items}))
        user_table = tf.constant(self.user_ids)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)], autograph=False)
        def score_chunk(user_indices):
            return model.score_candidates(tf.gather(user_table, user_indices), items)

        def score(user_indices: tf.Tensor) -> tf.Tensor:
            user_indices = tf.cast(user_indices, tf.int64)
            chunks = [
                score_chunk(user_indices[start : start + users_per_chunk])
                for start in range(0, int(tf.shape(user_indices)[0]), users_per_chunk)
            ]
            return tf.concat(chunks, axis=0)

        return score

    def top_titles(self, score_fn: ScoreFn, user_indices: Sequence[int], k: int = 10) -> Dict[str, List[str]]:
        """Top-``k`` unseen items (titles if known, else ids) per user; training items masked."""
        scores = score_fn(tf.constant(np.asarray(user_indices, np.int64))).numpy()
        train = self.split.train
        seen_users, seen_items = train.user_indices(), train.item_indices()
        titles = self.item_titles
        names = titles if titles is not None else self.item_ids
        result = {}
        for row, user in enumerate(user_indices):
            scores[row, seen_items[seen_users == user]] = -np.inf
            result[str(self.user_ids[user])] = [str(names[i]) for i in np.argsort(-scores[row])[:k]]
        return result
