"""Evaluation: top-K ranking metrics, full-ranking and sampled protocols, CTR metrics.

Example::

    from tfrecs.evaluation import RankingTargets, evaluate_full_ranking
    targets = RankingTargets.from_pairs(test_users, test_items, train_users, train_items,
                                        num_items=1682)
    results = evaluate_full_ranking(score_fn, targets, ks=(10, 20))   # {"ndcg@10": ...}

Definitions, tie-breaking and averaging are in ``docs/metrics.md``.
"""

from tfrecs.evaluation.ctr_metrics import auc, gauc, log_loss
from tfrecs.evaluation.full_ranking import RaggedIndices, RankingTargets, evaluate_full_ranking
from tfrecs.evaluation.ranking_metrics import ranking_metrics_from_hits
from tfrecs.evaluation.sampled import evaluate_sampled, sample_negatives
from tfrecs.evaluation.protocols import PROTOCOLS, evaluate_protocol, ranking_targets  # noqa: E402

__all__ = [
    "RankingTargets",
    "RaggedIndices",
    "evaluate_full_ranking",
    "evaluate_sampled",
    "sample_negatives",
    "ranking_metrics_from_hits",
    "auc",
    "log_loss",
    "gauc",
    "PROTOCOLS",
    "evaluate_protocol",
    "ranking_targets",
]
