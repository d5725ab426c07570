"""``TwoTowerData``: the raw-feature view of a split that a Two-Tower model trains and serves on.

``TwoTowerData.from_split`` declares the features from the data set's user and item tables,
fits the ``FeatureSpec`` on the training split only, builds each user's raw query features
(profile + most recent training items as a padded ``history``, ``tfrecs.data.histories``)
and each catalogue item's raw candidate features, and gives the ``tf.data`` pipeline of
(user, positive item) batches with each candidate's in-batch sampling probability (for
the logQ correction). A training example's own item is removed from its history, so the
model cannot learn to copy history.

Example::

    data = TwoTowerData.from_split(make_split(load_dataset("ml-100k"), "random"), history_length=50)
    model = TwoTower(data.spec, data.query_features, data.candidate_features)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(data.training_dataset(batch_size=512), epochs=10)
    scores = data.score_fn(model)(tf.constant([0, 1]))   # [2, num_items], catalogue order
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import ITEM_ID, USER_ID, Columns, joined_columns, object_column
from tfrecs.data.feature_spec import SEQUENCE_PADDING, Feature, FeatureSpec
from tfrecs.data.histories import id_dtype, pad_ids, user_histories
from tfrecs.data.splits import Split
from tfrecs.pipelines.id_view import ScoreFn, factorized_score_fn
from tfrecs.pipelines.negative_sampling import add_sampling_probability, item_counts, sampling_probabilities

HISTORY = "history"
TEXT_COLUMNS = ("title",)
NUMERIC_COLUMNS = ("age", "release_year")
SKIPPED_COLUMNS = ("zip_code",)
NUMERIC_BUCKETS = 10
ITEM_INDEX, USER_INDEX = "item_index", "user_index"


def _declare(name: str, values: np.ndarray) -> Feature:
    """A feature declaration from a table column (lists -> sequence, titles -> text, ...)."""
    if values.dtype == object:
        lengths = [len(v) for v in values]
        flat = [x for v in values for x in v]
        return Feature(
            name, "sequence", dtype=id_dtype(np.asarray(flat)) if flat else "string", max_length=max(lengths + [1])
        )
    if name in TEXT_COLUMNS:
        return Feature(name, "text")
    if name in NUMERIC_COLUMNS or values.dtype.kind == "f":
        return Feature(name, "numeric", num_buckets=NUMERIC_BUCKETS)
    return Feature(name, "categorical", dtype=id_dtype(values))


def _table_columns(table: Optional[Columns], id_column: str, ids: np.ndarray) -> Columns:
    """The id plus the feature columns of a user / item table (``SKIPPED_COLUMNS`` left out)."""
    columns = {id_column: ids}
    if table is not None:
        columns.update({k: v for k, v in table.items() if k != id_column and k not in SKIPPED_COLUMNS})
    return columns


@dataclass
class TwoTowerData:
    """Everything a Two-Tower model is trained, evaluated and served with (raw features).

    Attributes:
        split: the data split.
        spec: ``FeatureSpec`` fitted on the training split.
        query_features / candidate_features: feature names of each tower.
        user_features: raw query features of every catalogue user (row = user index);
            sequences are padded ``[num_users, length]`` arrays.
        candidates: raw candidate features of every catalogue item (row = item index),
            including ``item_id``.
        sampling_probability: each item's in-batch sampling probability (training frequency).
    """

    split: Split
    spec: FeatureSpec
    query_features: List[str]
    candidate_features: List[str]
    user_features: Dict[str, np.ndarray]
    candidates: Dict[str, np.ndarray]
    sampling_probability: np.ndarray

    @classmethod
    def from_split(cls, split: Split, history_length: int = 50) -> "TwoTowerData":
        """Declares the features from the data's tables and fits them on ``split.train``.

        Args:
            split: the split; only its training part is read.
            history_length: most recent training items in each user's ``history`` feature.

        Raises:
            ValueError: a user and an item column share a name, or ``history_length < 1``.
        """
        if history_length < 1:
            raise ValueError(f"history_length must be >= 1, got {history_length}")
        train = split.train
        users = _table_columns(train.users, USER_ID, train.user_index.ids)
        items = _table_columns(train.items, ITEM_ID, train.item_index.ids)
        clash = sorted((set(users) & set(items)) | ({HISTORY} & (set(users) | set(items))))
        if clash:
            raise ValueError(f"user and item tables share column name(s) {clash}; rename them")
        item_dtype = id_dtype(items[ITEM_ID])
        histories = user_histories(train, history_length, align="start")
        padding = SEQUENCE_PADDING[item_dtype]
        declared = [_declare(k, v) for k, v in {**users, **items}.items()]
        declared.append(Feature(HISTORY, "sequence", dtype=item_dtype, max_length=history_length))
        unpadded = object_column([row[row != padding].tolist() for row in histories])
        spec = FeatureSpec(declared).fit({**joined_columns(train), HISTORY: unpadded})

        def as_arrays(columns: Columns) -> Dict[str, np.ndarray]:
            out = {}
            for name, values in columns.items():
                feature = spec[name]
                out[name] = (
                    pad_ids(list(values), feature.max_length, feature.dtype)
                    if feature.kind == "sequence"
                    else np.asarray(values)
                )
            return out

        user_features = {**as_arrays(users), HISTORY: histories}
        return cls(
            split=split,
            spec=spec,
            query_features=list(users) + [HISTORY],
            candidate_features=list(items),
            user_features=user_features,
            candidates=as_arrays(items),
            sampling_probability=sampling_probabilities(item_counts(train)),
        )

    @property
    def item_titles(self) -> Optional[np.ndarray]:
        """Titles aligned with ``candidates`` (None when the items have no title)."""
        return self.candidates.get("title")

    @property
    def user_query_features(self) -> Dict[str, np.ndarray]:
        """The query tower's raw inputs of every catalogue user (row = user index)."""
        return {k: self.user_features[k] for k in self.query_features}

    def training_dataset(self, batch_size: int, seed: int = 0, shuffle: bool = True) -> tf.data.Dataset:
        """Batches of raw (user features, positive item features) with sampling probabilities.

        Each row's history leaves out its own positive item; ``candidate_sampling_probability``
        holds the positive's in-batch sampling probability (``TwoTower``'s logQ correction).
        """
        train = self.split.train
        pairs = {USER_INDEX: train.user_indices(), ITEM_INDEX: train.item_indices()}
        users = {k: tf.constant(v) for k, v in self.user_features.items()}
        items = {k: tf.constant(v) for k, v in self.candidates.items()}
        padding = SEQUENCE_PADDING[self.spec[HISTORY].dtype]

        def gather(batch):
            out = dict(batch)
            out.update({k: tf.gather(v, batch[USER_INDEX]) for k, v in users.items()})
            out.update({k: tf.gather(v, batch[ITEM_INDEX]) for k, v in items.items()})
            own = tf.equal(out[HISTORY], out[ITEM_ID][:, None])
            out[HISTORY] = tf.where(own, tf.constant(padding, out[HISTORY].dtype), out[HISTORY])
            return out

        dataset = tf.data.Dataset.from_tensor_slices(pairs)
        if shuffle:
            dataset = dataset.shuffle(len(train), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        dataset = add_sampling_probability(dataset, self.sampling_probability, item_key=ITEM_INDEX)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def user_vectors(self, model: Any, batch_size: int = 4096) -> tf.Tensor:
        """``[num_users, dim]`` query embeddings (``model(features)``) of every catalogue user."""
        return _embed(model, self.user_features, batch_size)

    def item_vectors(self, model: Any, batch_size: int = 4096) -> tf.Tensor:
        """``[num_items, dim]`` candidate embeddings of every catalogue item."""
        return _embed(model.candidate_embeddings, self.candidates, batch_size)

    def score_fn(self, model: Any) -> ScoreFn:
        """``user indices -> [B, num_items]`` scores from the model's current weights."""
        return factorized_score_fn(self.user_vectors(model), self.item_vectors(model))


def _embed(fn: Callable, features: Dict[str, np.ndarray], batch_size: int) -> tf.Tensor:
    total = len(next(iter(features.values())))
    parts = [
        fn({k: tf.constant(v[start : start + batch_size]) for k, v in features.items()})
        for start in range(0, total, batch_size)
    ]
    return tf.concat(parts, axis=0)
