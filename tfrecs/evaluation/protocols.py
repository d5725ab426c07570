"""Named evaluation protocols: which split, which part, what is masked, full or sampled.

``loo-full``: leave-one-out by time, full ranking over all items. ``random-full``: per-user
random 80/10/10, full ranking. The ``-sampled`` variants rank each positive among 100
sampled negatives (uniform; ``popularity`` on request). When evaluating ``test``, each
user's training and validation items are masked; on ``valid``, the training items.

Example::

    split = make_split(load_dataset("ml-100k"), "loo")
    figures = evaluate_protocol(Popularity.from_dataset(split.train), split, "loo-full")
    figures["ndcg@10"], figures["split"]
"""

from typing import Callable, Dict, Sequence

import numpy as np

from tfrecs.data.splits import Split
from tfrecs.evaluation.full_ranking import RankingTargets, evaluate_full_ranking
from tfrecs.evaluation.sampled import evaluate_sampled, sample_negatives

PROTOCOLS = {  # name -> (split name, ranking mode)
    "loo-full": ("loo", "full"),
    "loo-sampled": ("loo", "sampled"),
    "random-full": ("random", "full"),
    "random-sampled": ("random", "sampled"),
}
STAGES = ("valid", "test")


def protocol_split_name(protocol: str) -> str:
    """The split a protocol evaluates on (``"loo"`` or ``"random"``)."""
    if protocol not in PROTOCOLS:
        raise KeyError(f"unknown protocol {protocol!r}; known protocols: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol][0]


def ranking_targets(split: Split, stage: str = "test") -> RankingTargets:
    """Positives of ``stage`` per user, masking training (and, for test, validation) items."""
    if stage not in STAGES:
        raise KeyError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    positives = split.part(stage)
    masked = [split.train] + ([split.valid] if stage == "test" else [])
    return RankingTargets.from_pairs(
        users=positives.user_indices(),
        items=positives.item_indices(),
        exclude_users=np.concatenate([part.user_indices() for part in masked]),
        exclude_items=np.concatenate([part.item_indices() for part in masked]),
        num_items=split.train.num_items,
    )


def evaluate_protocol(
    score_fn: Callable,
    split: Split,
    protocol: str,
    stage: str = "test",
    ks: Sequence[int] = (10, 20),
    num_negatives: int = 100,
    negative_distribution: str = "uniform",
    seed: int = 0,
    batch_size: int = 1024,
) -> Dict[str, object]:
    """Evaluates ``score_fn`` (user indices ``[B]`` -> scores ``[B, num_items]``) on a protocol.

    Returns:
        Metric figures (``hr@10``, ``ndcg@10``, ...) plus ``protocol``, ``split`` (the
        part measured) and ``num_users`` evaluated.
    """
    split_name, mode = PROTOCOLS.get(protocol, (None, None))
    if split_name is None:
        protocol_split_name(protocol)  # raises the KeyError listing the protocols
    if split.protocol != split_name:
        raise ValueError(f"protocol {protocol!r} needs a {split_name!r} split, got a {split.protocol!r} split")
    targets = ranking_targets(split, stage)
    if mode == "full":
        figures = evaluate_full_ranking(score_fn, targets, ks=ks, batch_size=batch_size)
    else:
        counts = np.bincount(split.train.item_indices(), minlength=split.train.num_items)
        negatives = sample_negatives(
            targets, num_negatives=num_negatives, distribution=negative_distribution, item_counts=counts, seed=seed
        )
        figures = evaluate_sampled(score_fn, targets, negatives, ks=ks, batch_size=batch_size)
    return {**figures, "protocol": protocol, "split": stage, "num_users": int(len(targets.users))}
