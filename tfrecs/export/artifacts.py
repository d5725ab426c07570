"""What a trained model hands to an export, typed by kind: retrieval, ranking or candidate scoring.

A recipe (or a user's own training script) returns one of these beside the model;
``export_trained`` reads every field, and nothing else is carried.

* ``RetrievalArtifacts``: a factorised model (query tower . candidate vectors), exported with
  an index. Item-item models (EASE, ItemKNN) are one too: the query is the multi-hot history,
  the candidate vectors the item-item matrix's columns (``history_artifacts``).
* ``RankingArtifacts``: a model scoring given rows (CTR models), exported as probabilities.
* ``CandidateScoringArtifacts``: a ranking model that also recommends by scoring the whole
  catalogue (NeuMF: not factorised); it exports top-k over the catalogue plus a signature
  scoring a given candidate list, and still serves as the re-ranker of a two-stage export.

Example::

    artifacts = RetrievalArtifacts(feature_spec=spec, query_features=["user_id"],
                                   candidates={"item_id": item_ids}, split=split)
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import ITEM_ID
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.data.histories import id_dtype, user_histories
from tfrecs.data.splits import Split

Columns = Dict[str, np.ndarray]


@dataclass
class RetrievalArtifacts:
    """A retrieval model's export inputs.

    Attributes:
        feature_spec: the fitted spec of every served feature (dtypes, vocabularies).
        query_features: raw features the query tower reads (the signature's inputs).
        candidates: candidate-tower features of every catalogue item (with the id feature).
        split: the split trained on: its training rows give serving dtypes and warmup rows,
            and ``--show-user`` masks the user's training items (None: synthetic warmup rows,
            no ``--show-user``).
        item_titles: titles in catalogue order (answers carry them), if the data set has them.
        user_query_features: per-user query rows (catalogue user order) for features the
            user does not send by hand, e.g. a history: warmup rows and ``--show-user``.
        serving_signature: name -> ``tf.TensorSpec`` for inputs the spec cannot describe
            (a padded history of fixed length).
    """

    feature_spec: FeatureSpec
    query_features: List[str]
    candidates: Columns
    split: Optional[Split]
    item_titles: Optional[np.ndarray] = None
    user_query_features: Optional[Columns] = None
    serving_signature: Optional[Dict[str, tf.TensorSpec]] = None


@dataclass
class RankingArtifacts:
    """A ranking model's export inputs.

    Attributes:
        feature_spec: the fitted spec of every served feature.
        features: raw features the model reads (the signature's inputs), without labels.
        split: the split trained on (serving dtypes and warmup rows).
        serving_signature: as in ``RetrievalArtifacts``.
    """

    feature_spec: FeatureSpec
    features: List[str]
    split: Split
    serving_signature: Optional[Dict[str, tf.TensorSpec]] = None


@dataclass
class CandidateScoringArtifacts(RankingArtifacts):
    """A (user, item) scorer that recommends by scoring every catalogue item (NeuMF).

    A ``RankingArtifacts`` (so it re-ranks in a two-stage export) plus what a catalogue
    export needs.

    Attributes:
        candidates: ``{item feature: raw ids}`` of every catalogue item, in catalogue order.
        item_titles: titles in catalogue order, if the data set has them.
        user_query_features: per-user rows (catalogue user order) of the user features, for
            warmup rows and ``--show-user``.
    """

    candidates: Optional[Columns] = None
    item_titles: Optional[np.ndarray] = None
    user_query_features: Optional[Columns] = None


def history_artifacts(
    split: Split,
    item_ids: Sequence,
    history_key: str = "history",
    item_titles: Optional[np.ndarray] = None,
) -> RetrievalArtifacts:
    """Export inputs of a model whose query is the user's item history (EASE, ItemKNN).

    The signature takes ``history_key``: raw item ids ``[batch, any length]``, padded with
    ``""`` / ``-1`` (the whole training history, not a fixed window: the multi-hot ignores
    order and padding). ``--show-user`` sends the user's training items.

    Example::

        TrainResult(model=ease, figures=figures, artifacts=history_artifacts(split, ease.item_ids))
    """
    train = split.train
    counts = np.bincount(train.user_indices(), minlength=train.num_users)
    histories = user_histories(train, max(1, int(counts.max(initial=1))))
    dtype = tf.string if id_dtype(np.asarray(item_ids)) == "string" else tf.int64
    items = train.items
    if item_titles is None and items is not None and "title" in items:
        item_titles = np.asarray(items["title"])
    return RetrievalArtifacts(
        feature_spec=None,
        query_features=[history_key],
        candidates={ITEM_ID: np.asarray(item_ids)},
        split=split,
        item_titles=item_titles,
        user_query_features={history_key: histories},
        serving_signature={history_key: tf.TensorSpec([None, None], dtype)},
    )
