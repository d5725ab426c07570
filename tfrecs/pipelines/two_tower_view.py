"""``TwoTowerData``: the raw-feature view of a split that a Two-Tower model trains and serves on.

``TwoTowerData.from_split`` declares the features from the data set's user and item tables,
fits the ``FeatureSpec`` on the training split only, builds each user's raw query features
(profile + most recent training items as a padded ``history``, ``tfrecs.data.histories``)
and each catalogue item's raw candidate features, and gives the ``tf.data`` pipeline of
(user, positive item) batches with each candidate's in-batch sampling probability (for
the logQ correction). A training example's own item is removed from its history, so the
model cannot learn to copy history.

Features are chosen, not assumed: by default the query tower reads ``user_id``, every
user-table column (``zip_code`` left out) and ``history``, the candidate tower ``item_id``
and every item-table column, which for data loaded with ``from_files`` /
``from_dataframe`` are exactly the declared ``user_features`` / ``item_features``.
``query_features=[...]`` / ``candidate_features=[...]`` choose them instead (names from
the user table plus ``user_id`` and ``history``, and from the item table plus
``item_id``); a name the data lacks is an ``InputError`` naming it. The candidates always
carry ``item_id`` (the catalogue's raw ids), whether or not the tower reads it.

Example::

    data = TwoTowerData.from_split(make_split(load_dataset("ml-100k"), "random"), history_length=50)
    model = TwoTower(data.spec, data.query_features, data.candidate_features)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(data.training_dataset(batch_size=512), epochs=10)
    scores = data.score_fn(model)(tf.constant([0, 1]))   # [2, num_items], catalogue order
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import ITEM_ID, USER_ID, Columns, joined_columns, object_column
from tfrecs.data.feature_spec import SEQUENCE_PADDING, Feature, FeatureSpec
from tfrecs.data.histories import id_dtype, pad_ids, user_histories
from tfrecs.data.splits import Split
from tfrecs.pipelines.id_view import ScoreFn, factorized_score_fn
from tfrecs.pipelines.negative_sampling import add_sampling_probability, item_counts, sampling_probabilities
from tfrecs.pipelines.transforms import epoch_shuffled_batches
from tfrecs.pipelines.transforms import feature_names

HISTORY = "history"
TEXT_COLUMNS = ("title",)
NUMERIC_COLUMNS = ("age", "release_year")
SKIPPED_COLUMNS = ("zip_code",)
NUMERIC_BUCKETS = 10
ITEM_INDEX, USER_INDEX = "item_index", "user_index"


def declare_feature(name: str, values: np.ndarray) -> Feature:
    """A feature declaration from a column's values: lists -> sequence (as long as the longest),
    ``title`` -> text, ``age`` / ``release_year`` / float columns -> numeric (10 quantile
    buckets), anything else -> categorical (string or int64 ids).

    Example::

        declare_feature("genres", object_column([("Drama",), ("Comedy", "Drama")])).kind   # "sequence"
    """
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
    """The id plus every feature column of a user / item table."""
    columns = {id_column: ids}
    if table is not None:
        columns.update({k: v for k, v in table.items() if k != id_column})
    return columns


def _chosen(names: Optional[List[str]], available: List[str], default: List[str], argument: str) -> List[str]:
    """The tower's features: ``default`` when ``names`` is None, else ``names`` checked against ``available``."""
    if names is None:
        return default
    if not names:
        raise InputError(f"{argument}=[]: a tower needs at least one feature (available: {available})")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"feature(s) {repeated} named twice in {argument}")
    missing = [name for name in names if name not in available]
    if missing:
        raise InputError(f"{argument} names {missing}, which the data lacks (available: {available})")
    return list(names)


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
        titles: the item table's ``title`` column in catalogue order (None without one), kept
            when the candidate tower does not read it.
    """

    split: Split
    spec: FeatureSpec
    query_features: List[str]
    candidate_features: List[str]
    user_features: Dict[str, np.ndarray]
    candidates: Dict[str, np.ndarray]
    sampling_probability: np.ndarray
    titles: Optional[np.ndarray] = None

    @classmethod
    def from_split(
        cls,
        split: Split,
        history_length: int = 50,
        query_features: Union[None, str, Sequence[str]] = None,
        candidate_features: Union[None, str, Sequence[str]] = None,
    ) -> "TwoTowerData":
        """Declares the features from the data's tables and fits them on ``split.train``.

        Args:
            split: the split; only its training part is read.
            history_length: most recent training items in each user's ``history`` feature.
            query_features: the query tower's features (names or one comma-separated
                string); None: ``user_id``, the user table's columns but ``zip_code``, and
                ``history``.
            candidate_features: the candidate tower's features; None: ``item_id`` and the
                item table's columns.

        Raises:
            ValueError: a user and an item column share a name, or ``history_length < 1``.
            InputError: a named feature the data lacks (names it and what is available).
        """
        if history_length < 1:
            raise ValueError(f"history_length must be >= 1, got {history_length}")
        train = split.train
        users = _table_columns(train.users, USER_ID, train.user_index.ids)
        items = _table_columns(train.items, ITEM_ID, train.item_index.ids)
        clash = sorted((set(users) & set(items)) | ({HISTORY} & (set(users) | set(items))))
        if clash:
            raise ValueError(f"user and item tables share column name(s) {clash}; rename them")
        query = _chosen(
            feature_names(query_features),
            list(users) + [HISTORY],
            [k for k in users if k not in SKIPPED_COLUMNS] + [HISTORY],
            "query_features",
        )
        candidate = _chosen(feature_names(candidate_features), list(items), list(items), "candidate_features")
        titles = items.get("title")
        users = {k: v for k, v in users.items() if k in query}
        items = {k: v for k, v in items.items() if k in candidate or k == ITEM_ID}  # raw ids: always
        item_dtype = id_dtype(items[ITEM_ID])
        histories = user_histories(train, history_length, align="start")
        padding = SEQUENCE_PADDING[item_dtype]
        declared = [declare_feature(k, v) for k, v in {**users, **items}.items()]
        if HISTORY in query:
            declared.append(Feature(HISTORY, "sequence", dtype=item_dtype, max_length=history_length))
        unpadded = object_column([row[row != padding].tolist() for row in histories])
        joined = {**joined_columns(train), HISTORY: unpadded}
        spec = FeatureSpec(declared).fit({f.name: joined[f.name] for f in declared})

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

        user_features = as_arrays(users)
        if HISTORY in query:
            user_features[HISTORY] = histories
        return cls(
            split=split,
            spec=spec,
            query_features=query,
            candidate_features=candidate,
            user_features=user_features,
            candidates=as_arrays(items),
            sampling_probability=sampling_probabilities(item_counts(train)),
            titles=titles,
        )

    @property
    def item_titles(self) -> Optional[np.ndarray]:
        """Titles aligned with ``candidates`` (None when the items have no title)."""
        return self.candidates.get("title", self.titles)

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
        padding = SEQUENCE_PADDING[self.spec[HISTORY].dtype] if HISTORY in users else None

        def gather(batch):
            out = dict(batch)
            out.update({k: tf.gather(v, batch[USER_INDEX]) for k, v in users.items()})
            out.update({k: tf.gather(v, batch[ITEM_INDEX]) for k, v in items.items()})
            if padding is not None:
                own = tf.equal(out[HISTORY], out[ITEM_ID][:, None])
                out[HISTORY] = tf.where(own, tf.constant(padding, out[HISTORY].dtype), out[HISTORY])
            return out

        if shuffle:  # each epoch's order is a function of (seed, epoch): resumed runs read what unbroken ones do
            dataset = epoch_shuffled_batches(pairs, batch_size, seed)
        else:
            dataset = tf.data.Dataset.from_tensor_slices(pairs).batch(batch_size)
        dataset = dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
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
