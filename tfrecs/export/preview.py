"""Query a written export from disk, the way a serving client would: a check after exporting.

Example::

    rows = top_k_from_export("saved_models/two_tower/1", {"user_id": ["196"], ...},
                             exclude_item_ids=["242", "302"])
    rows[0]  # {"rank": 1, "item_id": "...", "score": ..., "title": "..."}
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf


def top_k_from_export(
    path: str, query: Mapping[str, Any], exclude_item_ids: Optional[Sequence] = None
) -> List[Dict[str, Any]]:
    """Loads the SavedModel at ``path`` and returns its top-k answer for one query.

    Args:
        path: a version directory of a retrieval or two-stage export.
        query: raw query features of ONE query (each value a scalar or a 1-D row).
        exclude_item_ids: raw item ids the answer must not contain (e.g. already seen).

    A FAISS export (``index="faiss-hnsw"`` / ``"faiss-ivf"``) is answered by its query tower
    and FAISS index (``tfrecs.export.faiss_index.load_faiss_export``).

    Raises:
        ValueError: the export has no ``serving_default`` signature or lacks an input.
    """
    import os

    from tfrecs.export.faiss_index import INDEX_FILE

    if os.path.isfile(os.path.join(path, INDEX_FILE)):
        return _top_k_from_faiss_export(path, query, exclude_item_ids)
    import scann  # noqa: F401  - registers the ScaNN ops before loading

    signature = tf.saved_model.load(path).signatures.get("serving_default")
    if signature is None:
        raise ValueError(f"{path}: the export has no serving_default signature")
    specs = signature.structured_input_signature[1]
    inputs = {}
    for name, spec in specs.items():
        if name == "exclude_item_ids":
            ids = np.asarray([] if exclude_item_ids is None else list(exclude_item_ids))
            inputs[name] = (
                tf.constant(ids.reshape(1, -1), dtype=spec.dtype) if len(ids) else tf.zeros([1, 0], spec.dtype)
            )
        elif name not in query:
            raise ValueError(f"{path}: the query lacks the signature input {name!r} (has {sorted(query)})")
        else:
            inputs[name] = tf.constant(np.asarray(query[name])[np.newaxis], dtype=spec.dtype)
    outputs = {key: value.numpy()[0] for key, value in signature(**inputs).items()}
    rows = []
    for rank, item_id in enumerate(outputs["item_ids"], start=1):
        row = {
            "rank": rank,
            "item_id": item_id.decode() if isinstance(item_id, bytes) else item_id.item(),
            "score": float(outputs["scores"][rank - 1]),
        }
        if "titles" in outputs:
            title = outputs["titles"][rank - 1]
            row["title"] = title.decode() if isinstance(title, bytes) else str(title)
        rows.append(row)
    return rows


def _top_k_from_faiss_export(
    path: str, query: Mapping[str, Any], exclude_item_ids: Optional[Sequence]
) -> List[Dict[str, Any]]:
    from tfrecs.export.faiss_index import load_faiss_export

    export = load_faiss_export(path)
    batch = {name: np.asarray(query[name])[np.newaxis] for name in export.inputs if name in query}
    missing = sorted(set(export.inputs) - set(batch))
    if missing:
        raise ValueError(f"{path}: the query lacks the signature input {missing[0]!r} (has {sorted(query)})")
    exclude = None if exclude_item_ids is None else list(exclude_item_ids)
    rows, scores = export.search_embeddings(export.query_embeddings(batch), exclude=exclude)
    answers = []
    for rank, (row, score) in enumerate(zip(rows[0], scores[0]), start=1):
        valid = row >= 0
        answer = {"rank": rank, "item_id": export.item_ids[row].item() if valid else export.padding_id}
        answer["score"] = float(score)
        if export.titles is not None:
            answer["title"] = str(export.titles[row]) if valid else ""
        answers.append(answer)
    return answers


def user_query(artifacts: Any, user_id: Any) -> Tuple[Dict[str, Any], np.ndarray]:
    """The query row of one training user and the items to leave out (the user's training items).

    Args:
        artifacts: ``RetrievalArtifacts`` of a trained run (``TrainResult.artifacts``) with
            ``user_query_features``.
        user_id: a raw user id of the training data.

    Returns:
        ``(query, seen item ids)``: the user's table row (features a re-ranker reads) and
        its query-tower features, ready for ``top_k_from_export``.

    Raises:
        ValueError: the artifacts carry no per-user query features, or the user is unknown.

    Example::

        query, seen = user_query(result.artifacts, "196")
        top_k_from_export("saved_models/two_tower/1", query, exclude_item_ids=seen)
    """
    per_user = getattr(artifacts, "user_query_features", None)
    if per_user is None:
        raise ValueError("a user's query needs a retrieval run that provides per-user query features")
    train = artifacts.split.train
    user = np.asarray([user_id]).astype(train.user_index.ids.dtype)
    if not np.isin(user, train.user_index.ids)[0]:
        raise ValueError(f"user {user_id!r} has no training interactions")
    row = int(train.user_index.lookup(user)[0])
    query: Dict[str, Any] = {}
    if train.users is not None:
        table_row = np.flatnonzero(np.asarray(train.users["user_id"]) == user[0])
        if len(table_row):
            query = {name: np.asarray(values)[table_row[0]] for name, values in train.users.items()}
    query.update({name: values[row] for name, values in per_user.items()})
    seen = train.interactions["item_id"][train.interactions["user_id"] == user[0]]
    return query, np.asarray(seen)
