"""CTR metrics: exact AUC with ties, clipped LogLoss, impression-weighted GAUC."""

import numpy as np
import pytest

import tfrecs  # noqa: F401  - before TensorFlow
from tfrecs.evaluation import auc, gauc, log_loss


def pairwise_auc(labels, scores):
    """Brute force: fraction of (positive, negative) pairs ordered right, ties count 1/2."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def test_auc_hand_value_with_a_tie():
    # pairs (0.8>0.1), (0.8>0.4), (0.4>0.1), (0.4=0.4 -> 1/2): 3.5 / 4
    assert auc([0, 1, 1, 0], [0.1, 0.8, 0.4, 0.4]) == 0.875


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_brute_force_pairwise_count_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 500)
    scores = rng.integers(0, 8, 500) + 0.3 * labels  # coarse scores: ties everywhere
    assert auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)


def test_auc_extremes_and_bool_labels():
    assert auc([True, False], [2.0, 1.0]) == 1.0
    assert auc([1, 0], [1.0, 2.0]) == 0.0
    assert auc([1, 0, 1, 0], [3.0, 3.0, 3.0, 3.0]) == 0.5


def test_log_loss_hand_value():
    expected = -(np.log(0.8) + np.log(1 - 0.4)) / 2
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(expected, rel=1e-12)


def test_log_loss_clips_certain_mistakes_at_eps():
    assert log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-np.log(1e-7), rel=1e-9)
    assert log_loss([1], [1.0]) == pytest.approx(-np.log(1 - 1e-7), rel=1e-9)


def test_log_loss_rejects_logits():
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        log_loss([1, 0], [2.3, -1.0])


def test_gauc_by_hand_on_two_users_weighted_by_impressions():
    # user 7: pos 0.9 beats 0.5, loses to 0.95 -> AUC 1/2 over 3 rows
    # user 9: pos 0.2 loses to 0.3 -> AUC 0 over 2 rows;   (3 * 0.5 + 2 * 0) / 5
    assert gauc([7, 7, 7, 9, 9], [1, 0, 0, 1, 0], [0.9, 0.5, 0.95, 0.2, 0.3]) == pytest.approx(0.3)


def test_gauc_ignores_users_with_one_class_and_ranks_within_users():
    user_ids = ["a", "a", "b", "b", "b"]
    # user b has only positives; user a's scores are below b's, which must not matter.
    assert gauc(user_ids, [1, 0, 1, 1, 1], [0.2, 0.1, 0.0, 0.9, 0.5]) == 1.0


def test_gauc_matches_per_user_brute_force():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 30, 600)
    labels = rng.integers(0, 2, 600)
    scores = rng.integers(0, 5, 600).astype(float)
    weighted, rows = 0.0, 0
    for u in np.unique(users):
        mine = users == u
        if 0 < labels[mine].sum() < mine.sum():
            weighted += mine.sum() * pairwise_auc(labels[mine], scores[mine])
            rows += mine.sum()
    assert gauc(users, labels, scores) == pytest.approx(weighted / rows, abs=1e-12)


@pytest.mark.parametrize("labels", [[0, 2], [-1, 1], [0.5, 1], ["0", "1"]])
def test_bad_labels_are_rejected(labels):
    for call in (
        lambda: auc(labels, [0.1, 0.2]),
        lambda: log_loss(labels, [0.1, 0.2]),
        lambda: gauc([0, 0], labels, [0.1, 0.2]),
    ):
        with pytest.raises(ValueError, match="labels must hold only 0 and 1"):
            call()


def test_other_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="labels has 2 entries but scores has 3"):
        auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="only one class"):
        auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="no user has both"):
        gauc([0, 1], [0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="user_ids"):
        gauc([0], [0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        log_loss([], [])
