"""Pieces every retrieval / ranking-by-scoring recipe shares: score functions and evaluators.

Example::

    score_fn = factorized_score_fn(user_vectors, item_vectors)   # numpy or tensors
    figures = evaluate_protocol(score_fn, split, "random-full")
    callback = EvaluationCallback(validation_evaluator(split, "random-full", make_score_fn))
"""

from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from tfrecs.core.errors import InputError
from tfrecs.data.splits import Split
from tfrecs.evaluation.protocols import PROTOCOLS, evaluate_protocol, protocol_split_name
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


EVALUATION_KEYS = ("protocol", "split", "ks", "num_negatives")


def evaluation_settings(config: Any, protocol: str, ks: Sequence[int] = (10, 20)) -> Dict[str, Any]:
    """``evaluate_protocol`` keywords of a recipe's reported figures: ``protocol`` on the test
    part at ``ks``, unless ``config.evaluation`` asks otherwise (``tfrecs evaluate --run-dir R
    --protocol P --split valid --k 5 10``).

    Raises:
        InputError: an unknown key, or a protocol on another split than the one the model
            was trained on (names both and the protocols that fit).
    """
    asked = dict(getattr(config, "evaluation", None) or {})
    unknown = sorted(set(asked) - set(EVALUATION_KEYS))
    if unknown:
        raise InputError(f"unknown evaluation setting(s) {unknown}; known: {', '.join(EVALUATION_KEYS)}")
    chosen = asked.get("protocol") or protocol
    trained_on = protocol_split_name(protocol)
    if protocol_split_name(chosen) != trained_on:
        fitting = [name for name, (split_name, _) in PROTOCOLS.items() if split_name == trained_on]
        raise InputError(
            f"--protocol {chosen} evaluates on the {protocol_split_name(chosen)!r} split, but {config.model} was "
            f"trained on the {trained_on!r} split; protocols on that split: {', '.join(fitting)}"
        )
    return {
        "protocol": chosen,
        "stage": asked.get("split") or "test",
        "ks": tuple(asked.get("ks") or ks),
        "num_negatives": int(asked.get("num_negatives") or 100),
        "seed": getattr(config, "seed", 0),
    }


def final_figures(
    score_fn: ScoreFn,
    split: Split,
    protocol: str,
    ks: Sequence[int] = (10, 20),
    config: Optional[Any] = None,
    **extra,
) -> Dict[str, object]:
    """The figures a recipe reports: test metrics at ``ks`` plus ``extra`` (epochs, seed, ...);
    ``config.evaluation`` may choose another protocol on the same split, part or cut-offs."""
    return {**evaluate_protocol(score_fn, split, **evaluation_settings(config, protocol, ks)), **extra}


def history_seconds_per_epoch(epoch_seconds: Sequence[float]) -> float:
    """Mean seconds per epoch, leaving out the first (tracing) epoch when there are more."""
    seconds = list(epoch_seconds)
    return float(np.mean(seconds[1:] if len(seconds) > 1 else seconds)) if seconds else 0.0
