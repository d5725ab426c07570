"""Candidate-scoring export: a (user, item) scorer that is not factorised (NeuMF), served over the catalogue.

NeuMF has no query tower: every (user, item) pair goes through its network, so there is no
index to search. The export scores the whole catalogue exactly per request and has two
signatures:

* ``serving_default``: the user features (``user_id`` ``[batch]``) plus the optional
  ``exclude_item_ids`` ``[batch or 1, m]`` (as in a retrieval export) -> ``item_ids``
  ``[batch, k]`` raw ids, ``scores`` ``[batch, k]`` float32 logits (best first, what
  ``NeuMF.recommend`` returns), ``probabilities`` (their sigmoid) and, when titles were
  given, ``titles``. If exclusions leave fewer than ``k`` items, the tail holds the padding
  id (``""`` / ``-1``), the lowest float32 score and probability 0.
* ``score_candidates``: the user features plus ``candidate_item_ids`` ``[batch, c]`` (raw
  ids, any c) -> ``scores`` and ``probabilities`` ``[batch, c]`` of exactly those items, in
  the given order (an id outside the catalogue gets the model's unknown-item score).

Each request scores ``batch x catalogue`` pairs: fine for catalogues of thousands to tens of
thousands of items; a larger catalogue wants a retrieval stage in front (two-stage export with
NeuMF as the re-ranker).

Example::

    result = train(TrainConfig(model="neumf"))
    export_candidate_scoring(result.model, result.artifacts.candidates, "saved_models", "neumf",
                             feature_spec=result.artifacts.feature_spec, user_features=["user_id"])
"""

import time
from typing import Any, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.export.index import LOWEST_SCORE
from tfrecs.export.layout import resolve_version
from tfrecs.export.retrieval import EXCLUDE_INPUT, check_candidates, exclusion_default
from tfrecs.export.saving import ExportResult, save_export, trackable_parts
from tfrecs.export.signature import checked_features, describe, example_features, feature_signature

CANDIDATES_INPUT = "candidate_item_ids"
SCORE_CANDIDATES = "score_candidates"


def _padding(dtype: tf.DType):
    return "" if dtype == tf.string else -1


def _catalogue_ids(values: Any) -> np.ndarray:
    values = np.asarray(values)
    return values.astype(np.int64) if values.dtype.kind in "iu" else np.asarray([str(v) for v in values], dtype=object)


class CandidateScoringModule(tf.Module):
    """Serving module of a (user, item) scorer over a fixed catalogue.

    Args:
        model: has ``score_candidates(user_ids, item_ids) -> [users, items]`` logits, its
            ``call`` scores ``{user_key, item_key}`` pairs, and ``user_key`` / ``item_key``.
        item_ids: the catalogue's raw ids.
        k: answers per query of ``serving_default``.
        user_signature: name -> TensorSpec of the user features.
        item_titles: optional titles aligned with ``item_ids``.
    """

    def __init__(
        self,
        model: Any,
        item_ids: np.ndarray,
        k: int,
        user_signature: Mapping[str, tf.TensorSpec],
        item_titles: Optional[Sequence[str]] = None,
    ):
        super().__init__(name="candidate_scoring")
        self.model_parts = trackable_parts(model)
        ids = tf.constant(_catalogue_ids(item_ids))
        self.item_ids = tf.Variable(ids, trainable=False, name="item_ids")
        self.num_items = int(ids.shape[0])
        self.rows = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(ids, tf.range(self.num_items, dtype=tf.int64)), default_value=-1
        )
        self.titles = (
            None
            if item_titles is None
            else tf.Variable(np.asarray([str(t) for t in item_titles], dtype=object), trainable=False, name="titles")
        )
        id_dtype = ids.dtype
        user_key, item_key = model.user_key, model.item_key

        def catalogue(features, exclude_item_ids=exclusion_default(id_dtype)):  # noqa: B008  (traced once)
            features = checked_features(features, user_signature)
            logits = tf.cast(model.score_candidates(features[user_key], self.item_ids), tf.float32)
            excluded = self._excluded(exclude_item_ids)
            scores, rows = tf.math.top_k(tf.where(excluded, LOWEST_SCORE, logits), k=k)
            valid = tf.logical_not(tf.gather(tf.broadcast_to(excluded, tf.shape(logits)), rows, batch_dims=1))
            outputs = {
                "item_ids": tf.where(valid, tf.gather(self.item_ids, rows), _padding(id_dtype)),
                "scores": scores,
                "probabilities": tf.where(valid, tf.sigmoid(scores), 0.0),
            }
            if self.titles is not None:
                outputs["titles"] = tf.where(valid, tf.gather(self.titles, rows), "")
            return outputs

        def listed(features, candidate_item_ids):
            features = checked_features(features, user_signature)
            per_user = tf.shape(candidate_item_ids)[1]
            pairs = {
                user_key: tf.repeat(features[user_key], per_user, axis=0),
                item_key: tf.reshape(candidate_item_ids, [-1]),
            }
            logits = tf.reshape(tf.cast(model(pairs, training=False), tf.float32), tf.shape(candidate_item_ids))
            return {"scores": logits, "probabilities": tf.sigmoid(logits)}

        self.serving_default = tf.function(
            catalogue, input_signature=[dict(user_signature), tf.TensorSpec([None, None], id_dtype, name=EXCLUDE_INPUT)]
        )
        self.extra_signatures = {
            SCORE_CANDIDATES: tf.function(
                listed,
                input_signature=[dict(user_signature), tf.TensorSpec([None, None], id_dtype, name=CANDIDATES_INPUT)],
            )
        }

    def _excluded(self, exclude_ids: tf.Tensor) -> tf.Tensor:
        """``[batch or 1, num_items]`` bool: catalogue rows named in ``exclude_ids`` (unknown ids ignored)."""
        rows = self.rows.lookup(exclude_ids)
        queries = tf.shape(rows, out_type=tf.int64)[0]
        grid = tf.broadcast_to(tf.range(queries)[:, None], tf.shape(rows, out_type=tf.int64))
        known = rows >= 0
        indices = tf.stack([tf.boolean_mask(grid, known), tf.boolean_mask(rows, known)], axis=1)
        hits = tf.scatter_nd(indices, tf.ones(tf.shape(indices)[:1], tf.int32), [queries, self.num_items])
        return hits > 0


def check_scorer(model: Any, examples: Mapping[str, np.ndarray], item_ids: np.ndarray) -> None:
    """Scores the example users against a few catalogue items.

    Raises:
        ValueError: the model has no ``score_candidates`` / ``user_key`` / ``item_key``, or its
            scores are not ``[users, items]``.
    """
    name = type(model).__name__
    missing = [attr for attr in ("score_candidates", "user_key", "item_key") if not hasattr(model, attr)]
    if missing:
        raise ValueError(
            f"model {name} cannot score a catalogue: it lacks {missing} (a candidate-scoring export needs "
            "score_candidates(user_ids, item_ids) -> [users, items] logits, as NeuMF has)."
        )
    if model.user_key not in examples:
        raise ValueError(f"{name} reads users from {model.user_key!r}, which is not among {sorted(examples)}.")
    users = tf.constant(examples[model.user_key])
    scores = model.score_candidates(users, tf.constant(_catalogue_ids(item_ids[:3])))
    if tuple(scores.shape) != (len(examples[model.user_key]), min(3, len(item_ids))):
        raise ValueError(f"{name}.score_candidates returned shape {scores.shape}; expected [users, items].")


def export_candidate_scoring(
    model: Any,
    candidates: Mapping[str, Any],
    export_root: str,
    model_name: str,
    feature_spec: Optional[FeatureSpec] = None,
    user_features: Optional[Sequence[str]] = None,
    k: int = 10,
    item_titles: Optional[Sequence[str]] = None,
    columns: Optional[Mapping[str, np.ndarray]] = None,
    candidate_id_key: str = "item_id",
    version: Optional[int] = None,
    warmup: bool = True,
    base_path_prefix: Optional[str] = "/models",
    extra_info: Optional[Mapping[str, Any]] = None,
) -> ExportResult:
    """Exports a (user, item) scorer that recommends by scoring the whole catalogue (see the module doc).

    Args:
        model: e.g. ``NeuMF`` (``score_candidates``, ``user_key``, ``item_key``).
        candidates: ``{candidate_id_key: raw ids}`` of every catalogue item (catalogue order).
        export_root, model_name: TF Serving root and model name.
        feature_spec: fitted FeatureSpec (signature dtypes, vocabulary assets).
        user_features: the request's user features (default: ``[model.user_key]``).
        k: answers per query of ``serving_default``, fixed at export.
        item_titles: titles aligned with the candidates (adds a ``titles`` output).
        columns: training columns (dtypes, warmup rows), e.g. every user's ``user_id``.
        candidate_id_key: candidate column with the raw item ids.
        version, warmup, base_path_prefix: as in ``export_retrieval``.
        extra_info: more entries for ``export_info.json`` (``export_trained``: the training record).

    Returns:
        ExportResult (``info`` holds k, the catalogue size and both signatures).

    Raises:
        ValueError: a model that cannot score a catalogue, k outside [1, n], titles of
            another length, a version that exists.
    """
    started = time.perf_counter()
    resolve_version(export_root, model_name, version)  # fail before any work
    num_items = check_candidates(candidates, candidate_id_key, k)
    item_ids = np.asarray(candidates[candidate_id_key])
    if item_titles is not None and len(item_titles) != num_items:
        raise ValueError(f"item_titles has {len(item_titles)} entries but there are {num_items} candidates.")
    names = list(user_features or [getattr(model, "user_key", "user_id")])
    signature = feature_signature(feature_spec, names, columns=columns)
    examples = example_features(signature, feature_spec, num_rows=4, columns=columns)
    check_scorer(model, examples, item_ids)
    module = CandidateScoringModule(model, item_ids, k, signature, item_titles)
    id_dtype = module.item_ids.dtype
    outputs = ["item_ids", "scores", "probabilities"] + (["titles"] if item_titles is not None else [])
    id_spec = {"dtype": id_dtype.name, "shape": [-1, -1]}
    info = {
        "k": k,
        "candidate_id_key": candidate_id_key,
        "catalogue_size": num_items,
        "index": None,
        "inputs": {**describe(signature), EXCLUDE_INPUT: {**id_spec, "optional": True}},
        "outputs": outputs,
        "signatures": {
            SCORE_CANDIDATES: {
                "inputs": {**describe(signature), CANDIDATES_INPUT: id_spec},
                "outputs": ["scores", "probabilities"],
            }
        },
    }
    requests: Optional[List[Any]] = None
    if warmup:
        catalogue = _catalogue_ids(item_ids)
        rows = len(next(iter(examples.values())))
        requests = [
            {name: values[:1] for name, values in examples.items()},
            {**examples, EXCLUDE_INPUT: catalogue[:1].reshape(1, 1)},
            (SCORE_CANDIDATES, {**examples, CANDIDATES_INPUT: np.tile(catalogue[: min(3, num_items)], (rows, 1))}),
        ]
    return save_export(
        module,
        export_root,
        model_name,
        "candidate_scoring",
        info,
        feature_spec,
        requests,
        version,
        base_path_prefix,
        started,
        extra_info,
    )
