"""Pieces every retrieval / ranking-by-scoring recipe shares: score functions and evaluators.

Example::

    score_fn = factorized_score_fn(user_vectors, item_vectors)   # numpy or tensors
    figures = evaluate_protocol(score_fn, split, "random-full")
    callback = EvaluationCallback(validation_evaluator(split, "random-full", make_score_fn))
"""

from typing import Callable, Dict, Sequence

import numpy as np

from tfrecs.data.splits import Split
from tfrecs.evaluation.protocols import evaluate_protocol
from tfrecs.pipelines.id_view import ScoreFn, factorized_score_fn  # noqa: F401  - re-exported for recipes


def validation_evaluator(
    split: Split, protocol: str, make_score_fn: Callable[[object], ScoreFn], ks: Sequence[int] = (10,)
) -> Callable[[object], Dict[str, float]]:
    """``evaluate_fn(model)`` for ``EvaluationCallback``: the model's validation figures.

    ``make_score_fn(model)`` builds a fresh score function from the model's current weights.
    """

    def evaluate(model) -> Dict[str, float]:
        figures = evaluate_protocol(make_score_fn(model), split, protocol, stage="valid", ks=ks)
        return {k: v for k, v in figures.items() if isinstance(v, float)}

    return evaluate


def final_figures(
    score_fn: ScoreFn, split: Split, protocol: str, ks: Sequence[int] = (10, 20), **extra
) -> Dict[str, object]:
    """The figures a recipe reports: test metrics at ``ks`` plus ``extra`` (epochs, seed, ...)."""
    return {**evaluate_protocol(score_fn, split, protocol, stage="test", ks=ks), **extra}


def history_seconds_per_epoch(epoch_seconds: Sequence[float]) -> float:
    """Mean seconds per epoch, leaving out the first (tracing) epoch when there are more."""
    seconds = list(epoch_seconds)
    return float(np.mean(seconds[1:] if len(seconds) > 1 else seconds)) if seconds else 0.0
