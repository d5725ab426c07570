"""The CTR view of a split: labelled rows of raw features, a fitted spec and ``tf.data`` batches.

Every rating is a labelled row, ``label = rating >= 4`` (ML-100K: positive rate 0.5537,
``random-global`` split 80,000 / 10,000 / 10,000); data with a 0 / 1 ``label`` column
(``from_files(..., label="clicked")``) uses it as it is, and data with neither cannot train
a CTR model (an ``InputError`` says so). The built-in features (``ctr_features()``):
``user_id``, ``item_id``, ``gender``, ``occupation``, ``zip_code`` (categorical), ``age``
and ``release_year`` (numeric, quantile buckets), ``genres`` (sequence, padded with
``""``). The ``FeatureSpec`` is fitted on the training rows only; models read RAW values
and look them up inside.

Features are chosen, not assumed: ``features=None`` takes the built-in declarations the
data has columns for, in that order, then every other user / item feature column the data
declares (``from_files(user_features=..., item_features=...)``) except ``title``, which
names items in answers (ML-100K: the eight built-in ones; an own CSV with only users,
items and ratings: ``user_id``, ``item_id``); ``features=[...]`` takes exactly those, and a
named feature the data lacks is an ``InputError`` naming it. A named column without a
built-in declaration is declared from its values (lists -> sequence, floats -> numeric,
else categorical; ``tfrecs.pipelines.two_tower_view.declare_feature``).

Options add columns for the models that need more than the shared features:

* ``history_length=L``: DIN's behaviour sequence ``history``, each row's user's items
  rated strictly before it (``tfrecs.data.histories.event_histories``: at most the ``L``
  most recent, oldest first, padded at the end). It is built over the three parts'
  rows together: a test row sees the user's earlier interactions whatever part they fell
  in (past behaviour, known at serving time; no label is read), never its own item nor
  anything rated at the same second or later. It is read through the item lookup, so it
  has no ``FeatureSpec`` entry of its own.
* ``rating=True``: the raw ``rating`` (float32) beside ``label``, for multi-task models
  (``MULTITASK_LABEL_KEYS``: task ``like`` reads ``label``, task ``rating`` reads
  ``rating``).

Example::

    from tfrecs.data import load_dataset, make_split
    from tfrecs.pipelines.ctr_view import CTR_SPLIT, load_ctr_data

    split = make_split(load_dataset("ml-100k"), CTR_SPLIT, seed=2020)
    data = load_ctr_data(split)
    model = tfrecs.models.DeepFM(data.spec, data.features)
    model.compile(optimizer="adam")
    model.fit(data.dataset("train", 1024, shuffle=True), validation_data=data.dataset("valid", 4096))
    probabilities = model.predict(data.dataset("test", 4096))
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import ITEM_ID, RATING, TIMESTAMP, USER_ID, joined_columns
from tfrecs.data.feature_spec import Feature, FeatureSpec
from tfrecs.data.histories import event_histories, id_dtype, pad_ids
from tfrecs.data.splits import Split
from tfrecs.pipelines.transforms import epoch_shuffled_batches
from tfrecs.pipelines.two_tower_view import declare_feature
from tfrecs.pipelines.transforms import feature_names

LABEL = "label"
HISTORY = "history"
POSITIVE_RATING = 4.0
CTR_SPLIT = "random-global"
PROTOCOL = "ctr-random-global"
PARTS = ("train", "valid", "test")
GENRES_LENGTH = 6  # the most genres an ML-100K movie has
MULTITASK_LABEL_KEYS = {"like": LABEL, "rating": RATING}
# Columns ``features=None`` never takes: labels, time, DIN's history, and item titles (display text).
NOT_DEFAULT_FEATURES = frozenset({LABEL, HISTORY, RATING, TIMESTAMP, "title"})

Columns = Dict[str, np.ndarray]


def ctr_features() -> List[Feature]:
    """The CTR view's feature declarations (unfitted)."""
    return [
        Feature("user_id", "categorical"),
        Feature("item_id", "categorical"),
        Feature("gender", "categorical"),
        Feature("occupation", "categorical"),
        Feature("zip_code", "categorical"),
        Feature("age", "numeric", num_buckets=8),
        Feature("release_year", "numeric", num_buckets=10),
        Feature("genres", "sequence", max_length=GENRES_LENGTH),
    ]


def check_binary_labels(labels, source: str = LABEL) -> np.ndarray:
    """``labels`` as float32 after checking they are all 0 or 1 (the NumPy twin of
    ``tfrecs.models.ctr_base.checked_binary_label``).

    Raises:
        ValueError: names ``source`` and the offending values.

    Example::

        check_binary_labels([0, 1, 1])        # array([0., 1., 1.], dtype=float32)
    """
    labels = np.asarray(labels, dtype=np.float32)
    bad = np.unique(labels[(labels != 0) & (labels != 1)])
    if len(bad):
        raise ValueError(f"{source}: a binary task needs labels in {{0, 1}}; found {bad[:5].tolist()}")
    return labels


@dataclass
class CtrData:
    """Split, fitted spec and per-part columns of the CTR view.

    Attributes:
        split: the split the view was made of.
        spec: ``FeatureSpec`` fitted on the training rows.
        columns: part name (``train``/``valid``/``test``) -> column name -> array: the
            features, ``label`` and any extra columns (``history``, ``rating``).
        features: model inputs, in spec order (plus ``history`` when built).
        labels: label columns batches carry (``label``, plus ``rating`` when built).
    """

    split: Split
    spec: FeatureSpec
    columns: Dict[str, Columns]
    features: List[str] = field(default_factory=list)
    labels: List[str] = field(default_factory=lambda: [LABEL])

    def dataset(self, part: str, batch_size: int, shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
        """Batches (dicts of ``features`` + ``labels``) of one part.

        ``shuffle`` gives each epoch its own order, a function of ``(seed, epoch)`` only
        (``tfrecs.pipelines.transforms.epoch_shuffled_batches``), so a resumed run reads what
        an unbroken one reads.

        Raises:
            KeyError: unknown part.
        """
        columns = {name: self.columns[part][name] for name in self.features + self.labels}
        if shuffle:
            return epoch_shuffled_batches(columns, batch_size, seed).prefetch(tf.data.AUTOTUNE)
        return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def initial_bias(self) -> Dict[str, float]:
        """Starting logit biases by multi-task name: log-odds of a like, the mean rating.

        Raises:
            KeyError: the view was built without ``rating=True``.
        """
        like = float(np.mean(self.columns["train"][LABEL]))
        return {"like": float(np.log(like / (1 - like))), "rating": float(np.mean(self.columns["train"][RATING]))}


def _labels(joined: Columns) -> np.ndarray:
    """A part's 0 / 1 labels: its ``label`` column, else ``rating >= 4``."""
    if LABEL in joined:
        return check_binary_labels(joined[LABEL])
    return check_binary_labels(joined[RATING] >= POSITIVE_RATING)


def _fit_dtype(feature: Feature, values: np.ndarray) -> Feature:
    """A built-in categorical / sequence declaration with the id dtype of the data's column."""
    if feature.kind == "categorical" and values.dtype != object:
        dtype = id_dtype(values)
    elif feature.kind == "sequence":
        flat = [x for row in values for x in row]
        dtype = id_dtype(np.asarray(flat)) if flat else feature.dtype
        longest = max([len(row) for row in values] + [feature.max_length or 1])
        if longest != feature.max_length:  # own data with longer lists than ML-100K's 6 genres
            feature = dataclasses.replace(feature, max_length=longest)
    else:
        return feature
    return feature if dtype == feature.dtype else dataclasses.replace(feature, dtype=dtype)


def declared_features(columns: Columns, features: Union[None, str, Sequence[str]] = None) -> List[Feature]:
    """The CTR features of data with ``columns`` (unfitted; see the module docstring).

    Args:
        columns: the training rows' joined columns (``joined_columns(split.train)``).
        features: names to use (None: the built-in declarations the data has columns for,
            then its other user / item feature columns but ``title``).

    Raises:
        InputError: a named feature that is not a column of the data (names it), a name
            given twice, or a label / history column named as a feature.

    Example::

        [f.name for f in declared_features({"user_id": u, "item_id": i, "rating": r})]  # user_id, item_id
    """
    builtin = {feature.name: feature for feature in ctr_features()}
    names = feature_names(features)
    if names is None:
        declared = [_fit_dtype(f, columns[f.name]) for f in builtin.values() if f.name in columns]
        others = [name for name in columns if name not in builtin and name not in NOT_DEFAULT_FEATURES]
        return declared + [declare_feature(name, columns[name]) for name in others]
    if not names:
        raise InputError("features=[]: a CTR model needs at least one feature (e.g. user_id,item_id)")
    reserved = sorted({LABEL, HISTORY, RATING, TIMESTAMP} & set(names))
    if reserved:
        raise InputError(f"feature(s) {reserved} are labels, time or DIN's history, not CTR features; drop them")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"feature(s) {repeated} named twice in features")
    missing = [name for name in names if name not in columns]
    if missing:
        available = sorted(set(columns) - {LABEL, RATING, TIMESTAMP})
        raise InputError(f"feature(s) {missing} named in features are not columns of the data (it has {available})")
    return [
        _fit_dtype(builtin[name], columns[name]) if name in builtin else declare_feature(name, columns[name])
        for name in names
    ]


def _part_columns(joined: Columns, features: Sequence[Feature]) -> Columns:
    """One split part's rows: the features' raw columns (sequences padded) and ``label``."""
    columns = {LABEL: _labels(joined)}
    for feature in features:
        values = joined[feature.name]
        if feature.kind == "sequence":
            values = pad_ids(values, feature.max_length or max(map(len, values)), feature.dtype)
        columns[feature.name] = values
    return columns


def _histories(split: Split, length: int) -> Dict[str, np.ndarray]:
    """Each part's ``[n, length]`` behaviour sequences, built over the three parts together."""
    parts = [split.part(name).interactions for name in PARTS]
    history = event_histories(
        *(np.concatenate([part[key] for part in parts]) for key in (USER_ID, ITEM_ID, TIMESTAMP)),
        length=length,
        align="start",
    )
    bounds = np.cumsum([0] + [len(part[USER_ID]) for part in parts])
    return {name: history[bounds[i] : bounds[i + 1]] for i, name in enumerate(PARTS)}


def load_ctr_data(
    split: Split,
    history_length: Optional[int] = None,
    rating: bool = False,
    features: Union[None, str, Sequence[str]] = None,
) -> CtrData:
    """The CTR view of ``split`` (see the module docstring).

    Args:
        split: train / valid / test parts with ratings or labels (``make_split(dataset,
            CTR_SPLIT, seed)`` for the published protocol).
        history_length: also build DIN's ``history`` column of this length (None: no
            history; needs a ``timestamp`` column).
        rating: also carry the raw ``rating`` column as a second label.
        features: the features to use (names, or one comma-separated string); None: the
            built-in declarations the data has columns for (``declared_features``).

    Returns:
        ``CtrData`` whose spec is fitted on the training rows.

    Raises:
        InputError: the data has neither a ``rating`` nor a ``label`` column, a named
            feature is missing (names it), ``rating=True`` without ratings or a history
            without timestamps.
        FeatureSpecError: a feature's column is malformed (names the feature).
        ValueError: ``history_length < 1``.
    """
    joined = {name: joined_columns(split.part(name)) for name in PARTS}
    train = joined["train"]
    if LABEL not in train and RATING not in train:
        raise InputError(
            f"{split.train.name}: a CTR model needs a rating (or label) column: its label is rating >= "
            f"{POSITIVE_RATING:g}, or a 0/1 label column; the data has only {sorted(train)} (declare rating= or "
            "label= when loading it, e.g. from_files(..., rating='stars'))"
        )
    if rating and RATING not in train:
        raise InputError(f"{split.train.name}: a rating task needs a rating column, which the data lacks")
    if history_length is not None and TIMESTAMP not in train:
        raise InputError(
            f"{split.train.name}: DIN's behaviour history needs a timestamp column (each row's strictly earlier "
            "items), which the data lacks; declare timestamp= when loading it"
        )
    declared = declared_features(train, features)
    columns = {name: _part_columns(joined[name], declared) for name in PARTS}
    spec = FeatureSpec(declared).fit({f.name: train[f.name] for f in declared})
    names, labels = spec.names, [LABEL]
    if history_length is not None:
        for name, history in _histories(split, history_length).items():
            columns[name][HISTORY] = history
        names = names + [HISTORY]
    if rating:
        for name in PARTS:
            columns[name][RATING] = joined[name][RATING].astype(np.float32)
        labels = labels + [RATING]
    return CtrData(split, spec, columns, names, labels)
