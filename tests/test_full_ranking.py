"""Full-ranking protocol: hand-computed tiny cases, a NumPy cross-check, input errors."""

import numpy as np
import pytest

import tfrecs  # noqa: F401  - before TensorFlow
import tensorflow as tf

from tfrecs.evaluation import RankingTargets, evaluate_full_ranking

LOG2_3 = np.log2(3)
NEG_INF = -np.inf


def reference_full_ranking(scores, positives, exclusions, ks):
    """Plain NumPy reference: ``scores[u]`` ranks user u; positives/exclusions are lists per user.

    Excluded items get -inf, a stable sort of the negated scores ranks ties by lower item
    index, -inf items never hit, and each metric is averaged over users with positives.
    """
    masked = np.array(scores, dtype=np.float32)
    for user, items in enumerate(exclusions):
        masked[user, list(items)] = NEG_INF
    order = np.argsort(-masked, axis=1, kind="stable")
    sums = {f"{name}@{k}": 0.0 for k in ks for name in ("hr", "recall", "precision", "mrr", "ndcg")}
    evaluated = [u for u, items in enumerate(positives) if len(items)]
    for user in evaluated:
        relevant = set(positives[user])
        for k in ks:
            ranks = [
                rank
                for rank, item in enumerate(order[user, :k], start=1)
                if item in relevant and masked[user, item] > NEG_INF
            ]
            sums[f"hr@{k}"] += 1.0 if ranks else 0.0
            sums[f"recall@{k}"] += len(ranks) / len(relevant)
            sums[f"precision@{k}"] += len(ranks) / k
            sums[f"mrr@{k}"] += 1.0 / ranks[0] if ranks else 0.0
            ideal = sum(1 / np.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))
            sums[f"ndcg@{k}"] += sum(1 / np.log2(r + 1) for r in ranks) / ideal
    return {name: total / len(evaluated) for name, total in sums.items()}


def lookup_scores(scores):
    table = tf.constant(scores, tf.float32)
    return lambda users: tf.gather(table, users)


def pairs(per_user):
    users = [u for u, items in enumerate(per_user) for _ in items]
    items = [i for row in per_user for i in row]
    return np.array(users, np.int64), np.array(items, np.int64)


def evaluate(scores, positives, exclusions, ks, batch_size=1024):
    targets = RankingTargets.from_pairs(*pairs(positives), *pairs(exclusions), num_items=np.shape(scores)[1])
    return evaluate_full_ranking(lookup_scores(scores), targets, ks=ks, batch_size=batch_size)


def test_tie_breaks_by_lower_item_index():
    # Items 0 and 4 tie at 3.0: item 0 comes first, so positive 4 sits at rank 2.
    r = evaluate([[3, 0, 0, 0, 3]], positives=[[4]], exclusions=[[]], ks=(1, 2))
    assert r["hr@1"] == 0.0
    assert r["mrr@2"] == 0.5
    assert r["ndcg@2"] == pytest.approx(1 / LOG2_3)


def test_excluded_top_item_is_skipped_and_tied_positives_ranked_by_index():
    # Item 0 excluded; items 1, 2, 3 tie -> order 1, 2, 3. Positives {1, 3} at ranks 1 and 3.
    r = evaluate([[9, 5, 5, 5, 1]], positives=[[1, 3]], exclusions=[[0]], ks=(2, 3))
    assert r["precision@2"] == 0.5 and r["recall@2"] == 0.5 and r["mrr@2"] == 1.0
    assert r["ndcg@2"] == pytest.approx(1 / (1 + 1 / LOG2_3))
    assert r["recall@3"] == 1.0
    assert r["ndcg@3"] == pytest.approx((1 + 0.5) / (1 + 1 / LOG2_3))


def test_excluded_or_minus_inf_positive_is_never_a_hit_even_when_k_covers_the_catalogue():
    # Positive 2 is excluded (despite its top score), positive 4 scores -inf: K = 5 ranks
    # them last, and neither counts; both still count as positives in the denominators.
    r = evaluate([[0, 0, 100, 0, NEG_INF]], positives=[[2, 4]], exclusions=[[2]], ks=(5,))
    assert all(value == 0.0 for value in r.values())


def test_k_larger_than_catalogue_divides_precision_by_k():
    r = evaluate([[0.1, 0.9, 0.5]], positives=[[0, 2]], exclusions=[[]], ks=(10,))
    assert r["precision@10"] == pytest.approx(2 / 10)
    assert r["recall@10"] == 1.0 and r["hr@10"] == 1.0
    # hits at ranks 2 and 3; ideal over min(2, 10) = 2 positions
    assert r["ndcg@10"] == pytest.approx((1 / LOG2_3 + 0.5) / (1 + 1 / LOG2_3))


def test_user_without_test_items_is_not_counted():
    scores = [[0.9, 0.1, 0.0], [0.0, 0.1, 0.9]]
    targets = RankingTargets.from_pairs([0], [0], exclude_users=[1], exclude_items=[0], num_items=3)
    assert targets.users.tolist() == [0]
    r = evaluate_full_ranking(lookup_scores(scores), targets, ks=(1,))
    assert r["hr@1"] == 1.0  # user 1 would have missed, pulling the mean to 0.5


def test_hand_computed_means_over_several_users():
    scores = [[9, 5, 5, 5, 1], [1, 1, 1, 1, 1], [3, 0, 0, 0, 3]]
    # user 0: hits at ranks 1, 3 of 2 positives; user 1: no positives; user 2: hit at rank 2
    r = evaluate(scores, positives=[[1, 3], [], [4]], exclusions=[[0], [0, 1], []], ks=(2, 10))
    assert r["hr@2"] == 1.0
    assert r["recall@2"] == pytest.approx((0.5 + 1) / 2)
    assert r["precision@10"] == pytest.approx((0.2 + 0.1) / 2)
    assert r["mrr@10"] == pytest.approx((1 + 0.5) / 2)
    assert r["ndcg@10"] == pytest.approx((1.5 / (1 + 1 / LOG2_3) + 1 / LOG2_3) / 2)


def test_targets_collapse_duplicates_and_sort_items():
    t = RankingTargets.from_pairs([3, 3, 1, 3], [2, 0, 1, 2], [3, 3, 5], [4, 4, 1], num_items=5)
    assert t.users.tolist() == [1, 3]
    assert t.positives.row(1).tolist() == [0, 2]
    assert t.exclusions.row(0).tolist() == [] and t.exclusions.row(1).tolist() == [4]
    assert t.positives.to_tensor().to_list() == [[1], [0, 2]]
    assert t.pair_users.tolist() == [1, 3, 3] and t.num_pairs == 3


@pytest.fixture(scope="module")
def random_case():
    rng = np.random.default_rng(7)
    num_users, num_items = 200, 300
    scores = rng.integers(0, 40, size=(num_users, num_items)).astype(np.float32)  # many ties
    scores[rng.random(scores.shape) < 0.02] = NEG_INF
    positives = [sorted(rng.choice(num_items, rng.integers(0, 12), replace=False)) for _ in range(num_users)]
    exclusions = [sorted(rng.choice(num_items, rng.integers(0, 60), replace=False)) for _ in range(num_users)]
    return scores, positives, exclusions


@pytest.mark.parametrize("ks,batch_size", [((1, 5, 10), 1024), ((20, 50), 37), ((300, 500), 64)])
def test_matches_numpy_reference_on_random_scores(random_case, ks, batch_size):
    scores, positives, exclusions = random_case
    expected = reference_full_ranking(scores, positives, exclusions, ks)
    got = evaluate(scores, positives, exclusions, ks, batch_size=batch_size)
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


def test_results_are_plain_floats_with_lower_case_names():
    r = evaluate([[0.5, 0.1]], positives=[[0]], exclusions=[[]], ks=(1,))
    assert list(r) == ["hr@1", "recall@1", "precision@1", "mrr@1", "ndcg@1"]
    assert all(type(v) is float for v in r.values())


# ---- bad input -------------------------------------------------------------------------


def test_mismatched_pair_lengths_name_the_arguments():
    with pytest.raises(ValueError, match="users has 2 entries but items has 1"):
        RankingTargets.from_pairs([0, 1], [0], num_items=3)
    with pytest.raises(ValueError, match="exclude_users has 1 entries but exclude_items has 2"):
        RankingTargets.from_pairs([0], [0], [0], [1, 2], num_items=3)


@pytest.mark.parametrize("item", [-1, 3])
def test_item_outside_catalogue_is_rejected(item):
    with pytest.raises(ValueError, match=r"items holds index .* outside \[0, num_items=3\)"):
        RankingTargets.from_pairs([0], [item], num_items=3)
    with pytest.raises(ValueError, match="exclude_items"):
        RankingTargets.from_pairs([0], [0], [0], [item], num_items=3)


def test_empty_targets_and_one_sided_exclusions_are_rejected():
    with pytest.raises(ValueError, match="no positives"):
        RankingTargets.from_pairs([], [], num_items=3)
    with pytest.raises(ValueError, match="together"):
        RankingTargets.from_pairs([0], [0], exclude_users=[0], num_items=3)
    with pytest.raises(ValueError, match="integer"):
        RankingTargets.from_pairs([0.5], [0], num_items=3)


@pytest.mark.parametrize("ks", [(), (0,), (10, -5)])
def test_empty_or_non_positive_ks_are_rejected(ks):
    with pytest.raises(ValueError, match="ks"):
        evaluate([[0.5, 0.1]], positives=[[0]], exclusions=[[]], ks=ks)


def test_wrong_score_shape_names_expected_and_got():
    targets = RankingTargets.from_pairs([0, 1], [0, 1], num_items=4)
    with pytest.raises(ValueError, match=r"\[2, 4\].*got shape \[2, 3\]"):
        evaluate_full_ranking(lambda users: tf.zeros([2, 3]), targets, ks=(1,))


def test_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        evaluate([[0.5, np.nan]], positives=[[0]], exclusions=[[]], ks=(1,))


def test_bad_batch_size_is_rejected():
    with pytest.raises(ValueError, match="batch_size"):
        evaluate([[0.5, 0.1]], positives=[[0]], exclusions=[[]], ks=(1,), batch_size=0)
