"""What a trained model hands to an export, typed by kind: retrieval or ranking.

A recipe (or a user's own training script) returns one of these beside the model;
``export_trained`` reads every field, and nothing else is carried.

Example::

    artifacts = RetrievalArtifacts(feature_spec=spec, query_features=["user_id"],
                                   candidates={"item_id": item_ids}, split=split)
"""

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from tfrecs.data.feature_spec import FeatureSpec
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
            and ``--show-user`` masks the user's training items.
        item_titles: titles in catalogue order (answers carry them), if the data set has them.
        user_query_features: per-user query rows (catalogue user order) for features the
            user does not send by hand, e.g. a history: warmup rows and ``--show-user``.
        serving_signature: name -> ``tf.TensorSpec`` for inputs the spec cannot describe
            (a padded history of fixed length).
    """

    feature_spec: FeatureSpec
    query_features: List[str]
    candidates: Columns
    split: Split
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
