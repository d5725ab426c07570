"""The CTR view of a split: labelled rows of raw features, a fitted spec and ``tf.data`` batches.

Every rating is a labelled row, ``label = rating >= 4`` (ML-100K: positive rate 0.5537,
``random-global`` split 80,000 / 10,000 / 10,000). Features (``ctr_features()``):
``user_id``, ``item_id``, ``gender``, ``occupation``, ``zip_code`` (categorical), ``age``
and ``release_year`` (numeric, quantile buckets), ``genres`` (sequence, padded with
``""``). The ``FeatureSpec`` is fitted on the training rows only; models read RAW values
and look them up inside.

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

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import ITEM_ID, RATING, TIMESTAMP, USER_ID, joined_columns
from tfrecs.data.feature_spec import Feature, FeatureSpec
from tfrecs.data.histories import event_histories, pad_ids
from tfrecs.data.splits import Split

LABEL = "label"
HISTORY = "history"
POSITIVE_RATING = 4.0
CTR_SPLIT = "random-global"
PROTOCOL = "ctr-random-global"
PARTS = ("train", "valid", "test")
GENRES_LENGTH = 6  # the most genres an ML-100K movie has
MULTITASK_LABEL_KEYS = {"like": LABEL, "rating": RATING}

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
        """Batches (dicts of ``features`` + ``labels``) of one part; ``shuffle`` reshuffles each epoch.

        Raises:
            KeyError: unknown part.
        """
        columns = {name: self.columns[part][name] for name in self.features + self.labels}
        data = tf.data.Dataset.from_tensor_slices(columns)
        if shuffle:
            data = data.shuffle(len(columns[LABEL]), seed=seed, reshuffle_each_iteration=True)
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def initial_bias(self) -> Dict[str, float]:
        """Starting logit biases by multi-task name: log-odds of a like, the mean rating.

        Raises:
            KeyError: the view was built without ``rating=True``.
        """
        like = float(np.mean(self.columns["train"][LABEL]))
        return {"like": float(np.log(like / (1 - like))), "rating": float(np.mean(self.columns["train"][RATING]))}


def _part_columns(joined: Columns, features: Sequence[Feature]) -> Columns:
    """One split part's rows: the features' raw columns (sequences padded) and ``label``."""
    columns = {LABEL: check_binary_labels(joined[RATING] >= POSITIVE_RATING)}
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


def load_ctr_data(split: Split, history_length: Optional[int] = None, rating: bool = False) -> CtrData:
    """The CTR view of ``split`` (see the module docstring).

    Args:
        split: train / valid / test parts with ratings (``make_split(dataset, CTR_SPLIT, seed)``
            for the published protocol).
        history_length: also build DIN's ``history`` column of this length (None: no history).
        rating: also carry the raw ``rating`` column as a second label.

    Returns:
        ``CtrData`` whose spec is fitted on the training rows.

    Raises:
        KeyError: the data set lacks a column of ``ctr_features()`` (names it).
        FeatureSpecError: a feature's column is malformed (names the feature).
        ValueError: ``history_length < 1``.
    """
    declared = ctr_features()
    joined = {name: joined_columns(split.part(name)) for name in PARTS}
    missing = [f.name for f in declared if f.name not in joined["train"]]
    if missing:
        raise KeyError(f"the CTR view needs column(s) {missing}, which the data set lacks")
    columns = {name: _part_columns(joined[name], declared) for name in PARTS}
    spec = FeatureSpec(declared).fit({f.name: joined["train"][f.name] for f in declared})
    features, labels = spec.names, [LABEL]
    if history_length is not None:
        for name, history in _histories(split, history_length).items():
            columns[name][HISTORY] = history
        features = features + [HISTORY]
    if rating:
        for name in PARTS:
            columns[name][RATING] = joined[name][RATING].astype(np.float32)
        labels = labels + [RATING]
    return CtrData(split, spec, columns, features, labels)
