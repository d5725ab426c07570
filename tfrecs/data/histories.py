"""Interaction histories as padded raw-id arrays: one id-dtype rule, one padder, two builders.

Every history a model reads (Two-Tower's recent items, DIN's behaviour sequence, SASRec /
BERT4Rec's input sequence) is built here, so they agree on order, truncation and padding:

* items are oldest first and a history longer than ``length`` keeps its most recent items;
* ``align="end"`` left-pads (the newest item is the last column: sequential models),
  ``align="start"`` right-pads (pooled or attended histories);
* raw padding is ``""`` for string ids and ``-1`` for int64 ids (``SEQUENCE_PADDING``),
  since integer catalogues may hold item 0.

Example::

    pad_ids([["a", "b", "c"], ["d"]], 2, "string")             # [["b", "c"], ["d", ""]]
    pad_ids([["a", "b", "c"], ["d"]], 2, "string", "end")      # [["b", "c"], ["", "d"]]
"""

from typing import Sequence

import numpy as np

from tfrecs.data.dataset import ITEM_ID, TIMESTAMP, RecDataset
from tfrecs.data.feature_spec import SEQUENCE_PADDING

ALIGNMENTS = ("start", "end")


def id_dtype(values) -> str:
    """The FeatureSpec dtype of an id column: ``"int64"`` for integer ids, else ``"string"``."""
    return "int64" if np.asarray(values).dtype.kind in "iu" else "string"


def pad_ids(rows: Sequence[Sequence], length: int, dtype: str, align: str = "start") -> np.ndarray:
    """``[len(rows), length]`` raw ids: each row's last ``length`` items, padded.

    Args:
        rows: per-row item sequences, oldest first.
        length: columns of the result (>= 1).
        dtype: ``"string"`` or ``"int64"`` (see ``id_dtype``).
        align: ``"start"`` (items first, then padding) or ``"end"`` (padding first).

    Raises:
        ValueError: ``length < 1``, an unknown ``dtype`` or ``align``.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if dtype not in SEQUENCE_PADDING:
        raise ValueError(f"dtype must be one of {sorted(SEQUENCE_PADDING)}, got {dtype!r}")
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {ALIGNMENTS}, got {align!r}")
    out = np.full((len(rows), length), SEQUENCE_PADDING[dtype], dtype=object)
    for row, values in enumerate(rows):
        values = list(values)[-length:]
        if values:
            if align == "start":
                out[row, : len(values)] = values
            else:
                out[row, length - len(values) :] = values
    return out.astype(np.int64) if dtype == "int64" else out.astype(str)


def chronological_order(dataset: RecDataset) -> np.ndarray:
    """Row order by (user index, timestamp, row): each user's interactions oldest first."""
    users = dataset.user_indices()
    when = dataset.interactions.get(TIMESTAMP, np.zeros(len(dataset), dtype=np.int64))
    return np.lexsort((np.arange(len(dataset)), np.asarray(when), users))


def user_histories(dataset: RecDataset, length: int, align: str = "start") -> np.ndarray:
    """``[num_users, length]``: each catalogue user's most recent items in ``dataset`` (raw ids).

    Rows follow the catalogue's user index; users without interactions get all padding.

    Example::

        user_histories(split.train, 50, align="end")   # SASRec's serving histories
    """
    order = chronological_order(dataset)
    users = dataset.user_indices()[order]
    items = np.asarray(dataset.interactions[ITEM_ID])[order]
    rows = [[] for _ in range(dataset.num_users)]
    starts = np.r_[0, np.flatnonzero(users[1:] != users[:-1]) + 1] if len(users) else np.array([], int)
    ends = np.r_[starts[1:], len(users)] if len(users) else np.array([], int)
    for start, end in zip(starts, ends):
        rows[users[start]] = items[max(start, end - length) : end].tolist()
    return pad_ids(rows, length, id_dtype(items), align)


def event_histories(user_ids, item_ids, timestamps, length: int = 50, align: str = "start") -> np.ndarray:
    """Each row's behaviour history: its user's items with a strictly earlier timestamp.

    Rows are sorted by (user, time); each row's window is the run of its user's rows before
    the first row sharing its timestamp, so neither the target item nor any item of the same
    or a later time leaks in. At most the ``length`` most recent items are kept.

    Args:
        user_ids, item_ids, timestamps: ``[n]`` columns of the interaction log.
        length: cap on the history length (>= 1).
        align: as in ``pad_ids``.

    Returns:
        ``[n, length]`` raw item ids, row-aligned with the inputs.

    Raises:
        ValueError: columns of different lengths or ``length < 1``.

    Example::

        event_histories(np.array(["u", "u", "u"]), np.array(["a", "b", "c"]), np.array([1, 2, 2]), 2)
        # -> [["", ""], ["a", ""], ["a", ""]]
    """
    user_ids, item_ids, timestamps = np.asarray(user_ids), np.asarray(item_ids), np.asarray(timestamps)
    if not len(user_ids) == len(item_ids) == len(timestamps):
        raise ValueError(
            f"user_ids, item_ids and timestamps differ in length: {len(user_ids)}, {len(item_ids)}, {len(timestamps)}"
        )
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    n = len(user_ids)
    rows = np.arange(n)
    order = np.lexsort((rows, timestamps, user_ids))
    users, times = user_ids[order], timestamps[order]
    new_user = np.r_[True, users[1:] != users[:-1]]
    new_time = new_user | np.r_[True, times[1:] != times[:-1]]
    user_start = np.maximum.accumulate(np.where(new_user, rows, 0))
    end = np.maximum.accumulate(np.where(new_time, rows, 0))  # first row of the same (user, time)
    start = np.maximum(user_start, end - length)
    sorted_items = item_ids[order]
    windows = [sorted_items[s:e].tolist() for s, e in zip(start, end)]
    history = pad_ids(windows, length, id_dtype(item_ids), align)
    result = np.empty_like(history)
    result[order] = history
    return result
