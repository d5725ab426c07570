"""Per-row top-K metrics from a hit matrix, checked against values computed by hand."""

import numpy as np
import pytest

import tfrecs  # noqa: F401  - before TensorFlow
from tfrecs.evaluation import ranking_metrics_from_hits

LOG2_3 = np.log2(3)


def test_single_hit_at_rank_two_of_two_positives():
    m = ranking_metrics_from_hits([[False, True, False]], [2], ks=(1, 3))
    assert m["hr@1"].tolist() == [0.0] and m["hr@3"].tolist() == [1.0]
    assert m["recall@3"].tolist() == [0.5]
    assert m["precision@3"].tolist() == pytest.approx([1 / 3])
    assert m["mrr@1"].tolist() == [0.0] and m["mrr@3"].tolist() == [0.5]
    # DCG = 1/log2(3); IDCG over min(2, 3) = 2 positions = 1 + 1/log2(3)
    assert m["ndcg@3"].tolist() == pytest.approx([(1 / LOG2_3) / (1 + 1 / LOG2_3)])


def test_ideal_dcg_is_capped_at_k_positions():
    # 5 positives, K = 2, both top slots hit: NDCG is exactly 1 and recall 2/5.
    m = ranking_metrics_from_hits([[True, True, False]], [5], ks=(2,))
    assert m["ndcg@2"].tolist() == pytest.approx([1.0])
    assert m["recall@2"].tolist() == pytest.approx([0.4])
    assert m["precision@2"].tolist() == [1.0]


def test_multiple_positives_hits_at_ranks_one_and_three():
    m = ranking_metrics_from_hits([[True, False, True, False]], [3], ks=(4,))
    dcg = 1 + 1 / np.log2(4)
    idcg = 1 + 1 / LOG2_3 + 1 / np.log2(4)
    assert m["ndcg@4"].tolist() == pytest.approx([dcg / idcg])
    assert m["mrr@4"].tolist() == [1.0]
    assert m["recall@4"].tolist() == pytest.approx([2 / 3])
    assert m["precision@4"].tolist() == [0.5]


def test_row_without_hits_scores_zero_and_rows_stay_separate():
    m = ranking_metrics_from_hits([[False, False], [True, False]], [1, 1], ks=(2,))
    for name in ("hr@2", "recall@2", "precision@2", "mrr@2", "ndcg@2"):
        assert m[name][0] == 0.0
    assert m["ndcg@2"][1] == 1.0 and m["precision@2"][1] == 0.5


def test_accepts_0_1_integers_and_returns_every_metric_per_k():
    m = ranking_metrics_from_hits(np.array([[0, 1]]), [1], ks=(1, 2))
    assert set(m) == {f"{n}@{k}" for n in ("hr", "recall", "precision", "mrr", "ndcg") for k in (1, 2)}


@pytest.mark.parametrize("ks", [(), (0,), (-1, 5), (2.5,), (True,)])
def test_bad_ks_are_rejected(ks):
    with pytest.raises(ValueError, match="ks"):
        ranking_metrics_from_hits([[True, False]], [1], ks=ks)


def test_hits_shorter_than_k_are_rejected():
    with pytest.raises(ValueError, match="pad hits"):
        ranking_metrics_from_hits([[True, False]], [1], ks=(3,))


def test_rows_without_positives_are_rejected():
    with pytest.raises(ValueError, match="num_positives"):
        ranking_metrics_from_hits([[False, False]], [0], ks=(1,))


def test_more_hits_than_positives_is_rejected():
    with pytest.raises(ValueError, match="more hits"):
        ranking_metrics_from_hits([[True, True]], [1], ks=(2,))


def test_num_positives_length_must_match_rows():
    with pytest.raises(ValueError, match="num_positives"):
        ranking_metrics_from_hits([[True], [False]], [1], ks=(1,))
