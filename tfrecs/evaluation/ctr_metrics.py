"""Click-through-rate metrics on labelled rows: exact AUC, LogLoss and GAUC (NumPy)."""

from __future__ import annotations

import numpy as np

LOG_LOSS_EPS = 1e-7


def auc(labels, scores) -> float:
    """Exact ROC AUC: the Mann-Whitney U statistic, ties counted as one half.

    Args:
        labels: ``[n]`` 0/1 (or bool) labels.
        scores: ``[n]`` scores, any monotone scale (logits or probabilities).

    Returns:
        The probability that a random positive outscores a random negative.

    Raises:
        ValueError: on mismatched lengths, labels outside {0, 1}, NaN scores, or labels of
            only one class.

    Example:
        >>> auc([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.4])
        0.875
    """
    labels, scores = _labelled_scores(labels, scores, "scores")
    per_group = _auc_per_group(np.zeros(len(labels), dtype=np.int64), labels, scores, 1)
    if np.isnan(per_group[0]):
        raise ValueError("auc is undefined when labels hold only one class")
    return float(per_group[0])


def log_loss(labels, probabilities, eps: float = LOG_LOSS_EPS) -> float:
    """Mean binary cross-entropy, probabilities clipped to ``[eps, 1 - eps]``.

    Args:
        labels: ``[n]`` 0/1 (or bool) labels.
        probabilities: ``[n]`` predicted probabilities of label 1, in [0, 1].
        eps: clipping bound.

    Returns:
        ``mean(-(y log p + (1 - y) log(1 - p)))``.

    Raises:
        ValueError: on mismatched lengths, labels outside {0, 1}, NaN or out-of-[0, 1]
            probabilities (pass ``sigmoid(logits)``, not logits).

    Example:
        >>> round(log_loss([1, 0], [0.8, 0.4]), 6)
        0.366985
    """
    labels, probabilities = _labelled_scores(labels, probabilities, "probabilities")
    if ((probabilities < 0) | (probabilities > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]; pass sigmoid(logits), not logits")
    p = np.clip(probabilities, eps, 1 - eps)
    return float(np.mean(-(labels * np.log(p) + (1 - labels) * np.log(1 - p))))


def gauc(user_ids, labels, scores) -> float:
    """Group AUC: per-user AUC averaged with weights = the user's number of rows.

    Users whose rows hold only one class have no AUC and are left out (as in RecBole).

    Args:
        user_ids: ``[n]`` user of each row (ints or strings).
        labels: ``[n]`` 0/1 (or bool) labels.
        scores: ``[n]`` scores.

    Returns:
        ``sum_u n_u AUC_u / sum_u n_u`` over users having both classes.

    Raises:
        ValueError: on mismatched lengths, labels outside {0, 1}, NaN scores, or no user
            with both classes.

    Example:
        >>> gauc([7, 7, 7, 9, 9], [1, 0, 0, 1, 0], [0.9, 0.5, 0.95, 0.2, 0.3])
        0.3
    """
    labels, scores = _labelled_scores(labels, scores, "scores")
    user_ids = np.asarray(user_ids)
    if user_ids.shape != labels.shape:
        raise ValueError(f"user_ids has shape {user_ids.shape} but labels has {labels.shape}")
    users, groups = np.unique(user_ids, return_inverse=True)
    per_user = _auc_per_group(groups.ravel(), labels, scores, len(users))
    rows_per_user = np.bincount(groups.ravel(), minlength=len(users))
    defined = ~np.isnan(per_user)
    if not defined.any():
        raise ValueError("gauc is undefined: no user has both a positive and a negative label")
    return float(np.average(per_user[defined], weights=rows_per_user[defined]))


def _auc_per_group(groups, labels, scores, num_groups) -> np.ndarray:
    """AUC of each group (NaN where a group lacks a class), from average ranks within groups."""
    ranks = _average_ranks_within_groups(groups, scores)
    positives = np.bincount(groups, weights=labels, minlength=num_groups)
    negatives = np.bincount(groups, minlength=num_groups) - positives
    positive_rank_sum = np.bincount(groups, weights=ranks * labels, minlength=num_groups)
    u_statistic = positive_rank_sum - positives * (positives + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((positives > 0) & (negatives > 0), u_statistic / (positives * negatives), np.nan)


def _average_ranks_within_groups(groups, scores) -> np.ndarray:
    """1-based rank of each score within its group, tied scores sharing their mean rank."""
    n = len(scores)
    order = np.lexsort((scores, groups))
    sorted_groups, sorted_scores = groups[order], scores[order]
    position = np.arange(n)
    group_starts = np.ones(n, dtype=bool)
    group_starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    run_starts = group_starts.copy()
    run_starts[1:] |= sorted_scores[1:] != sorted_scores[:-1]
    group_first = np.maximum.accumulate(np.where(group_starts, position, 0))
    run_id = np.cumsum(run_starts) - 1
    run_first = position[run_starts][run_id]
    run_last = run_first + np.bincount(run_id)[run_id] - 1
    ranks = np.empty(n)
    ranks[order] = (run_first + run_last) / 2 - group_first + 1
    return ranks


def _labelled_scores(labels, scores, scores_name):
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError(f"labels and {scores_name} must be 1-D; got shapes {labels.shape} and {scores.shape}")
    if len(labels) != len(scores):
        raise ValueError(f"labels has {len(labels)} entries but {scores_name} has {len(scores)}")
    if len(labels) == 0:
        raise ValueError(f"labels and {scores_name} are empty")
    if labels.dtype.kind not in "biuf" or not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must hold only 0 and 1")
    if np.isnan(scores).any():
        raise ValueError(f"{scores_name} contain NaN")
    return labels.astype(np.float64), scores
