"""Top-K ranking metrics per row (usually per user) from a hit matrix.

A hit matrix says, for each row and each ranked position, whether the item placed there
is one of the row's positives. Definitions follow RecBole (see ``docs/metrics.md``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

METRIC_NAMES = ("hr", "recall", "precision", "mrr", "ndcg")


def validate_ks(ks: int | Iterable[int]) -> tuple[int, ...]:
    """Returns the cut-offs as a tuple of distinct positive ints, in the order given.

    Raises:
        ValueError: if ``ks`` is empty or holds anything but positive integers.
    """
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = (ks,)
    try:
        ks = tuple(ks)
    except TypeError:
        raise ValueError(f"ks must be a sequence of positive ints such as (10, 20); got {ks!r}") from None
    if not ks:
        raise ValueError("ks is empty; pass at least one cut-off such as ks=(10,)")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"ks must hold positive ints; got {k!r} in ks={ks!r}")
    return tuple(dict.fromkeys(int(k) for k in ks))


def ranking_metrics_from_hits(hits, num_positives, ks=(10,)) -> dict[str, np.ndarray]:
    """Computes HR, Recall, Precision, MRR and NDCG at each K for every row.

    Args:
        hits: bool array ``[rows, L]``; ``hits[r, p]`` is True when the item ranked at
            position ``p`` (0-based) for row ``r`` is a positive. ``L`` must be at least
            ``max(ks)``: pad with False past the end of a short ranking.
        num_positives: int array ``[rows]``, each row's number of positives (>= 1).
        ks: cut-offs, e.g. ``(10, 20)``.

    Returns:
        Dict ``"<metric>@<k>" -> float64 array [rows]`` for metric in hr, recall,
        precision, mrr, ndcg. Average the arrays yourself (over users, or per user first).

    Raises:
        ValueError: on mismatched shapes, ``L < max(ks)``, a row without positives, or a
            row with more hits than positives.

    Example:
        >>> m = ranking_metrics_from_hits([[False, True, True]], [2], ks=(2,))
        >>> m["mrr@2"].tolist(), m["precision@2"].tolist(), m["ndcg@2"].round(4).tolist()
        ([0.5], [0.5], [0.3869])
    """
    ks = validate_ks(ks)
    hits = np.asarray(hits)
    num_positives = np.asarray(num_positives)
    if hits.ndim != 2:
        raise ValueError(f"hits must be a 2-D [rows, positions] array; got shape {hits.shape}")
    if hits.dtype != bool:
        if not np.isin(hits, (0, 1)).all():
            raise ValueError("hits must hold booleans (or 0/1)")
        hits = hits.astype(bool)
    if num_positives.shape != (hits.shape[0],):
        raise ValueError(
            f"num_positives must have shape ({hits.shape[0]},) to match hits rows; got {num_positives.shape}"
        )
    max_k = max(ks)
    if hits.shape[1] < max_k:
        raise ValueError(
            f"hits has {hits.shape[1]} positions but ks asks for {max_k}; "
            "pad hits with False for positions past the end of the ranking"
        )
    if (num_positives < 1).any():
        raise ValueError("num_positives must be >= 1 for every row; drop rows without positives")
    hits = hits[:, :max_k].astype(np.float64)
    cumulative_hits = np.cumsum(hits, axis=1)
    if (cumulative_hits[:, -1] > num_positives).any():
        raise ValueError("a row of hits has more hits than its num_positives")

    discounts = 1.0 / np.log2(np.arange(2, max_k + 2))
    cumulative_dcg = np.cumsum(hits * discounts, axis=1)
    ideal_dcg_at = np.cumsum(discounts)  # ideal_dcg_at[n - 1]: n hits at the top
    has_hit = hits.any(axis=1)
    first_hit_rank = np.where(has_hit, hits.argmax(axis=1) + 1, np.inf)

    metrics = {}
    for k in ks:
        hits_at_k = cumulative_hits[:, k - 1]
        ideal_dcg = ideal_dcg_at[np.minimum(num_positives, k) - 1]
        metrics[f"hr@{k}"] = (hits_at_k > 0).astype(np.float64)
        metrics[f"recall@{k}"] = hits_at_k / num_positives
        metrics[f"precision@{k}"] = hits_at_k / k
        metrics[f"mrr@{k}"] = np.where(first_hit_rank <= k, 1.0 / first_hit_rank, 0.0)
        metrics[f"ndcg@{k}"] = cumulative_dcg[:, k - 1] / ideal_dcg
    return metrics
