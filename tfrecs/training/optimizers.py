"""Optimizers and learning-rate schedules by name.

Schedules are step-based (they read ``optimizer.iterations``), so a fit resumed from a
backup continues the schedule where it stopped. Under ``mixed_float16`` Keras wraps the
optimizer in a ``LossScaleOptimizer`` at ``model.compile``; nothing to do here.

Example::

    optimizer = make_optimizer("adam", learning_rate=1e-3, schedule="warmup_cosine",
                               decay_steps=10_000, warmup_steps=500)
    model.compile(optimizer=optimizer)
"""

from typing import Any, Dict, Optional, Tuple, Union

import tf_keras

from tfrecs.training.lazy_adam import LazyAdam

OPTIMIZERS: Dict[str, Any] = {
    "adam": tf_keras.optimizers.Adam,
    "lazy_adam": LazyAdam,  # row-sparse embedding updates: the fast choice for big tables
    "adamw": tf_keras.optimizers.AdamW,
    "adagrad": tf_keras.optimizers.Adagrad,
    "sgd": tf_keras.optimizers.SGD,
    "rmsprop": tf_keras.optimizers.RMSprop,
}
SCHEDULES: Tuple[str, ...] = ("constant", "cosine", "warmup_cosine", "exponential")

LearningRate = Union[float, tf_keras.optimizers.schedules.LearningRateSchedule]


def learning_rate_schedule(
    schedule: str = "constant",
    learning_rate: float = 1e-3,
    decay_steps: Optional[int] = None,
    warmup_steps: int = 0,
    alpha: float = 0.0,
    decay_rate: float = 0.5,
) -> LearningRate:
    """Builds a step-based learning-rate schedule.

    Args:
        schedule: ``"constant"``, ``"cosine"`` (to ``alpha * learning_rate`` over
            ``decay_steps``), ``"warmup_cosine"`` (linear warm-up from 0 over
            ``warmup_steps``, then cosine), ``"exponential"`` (times ``decay_rate`` every
            ``decay_steps``).
        learning_rate: peak / initial learning rate.
        decay_steps: steps of decay (required except for ``constant``).
        warmup_steps: warm-up steps for ``warmup_cosine``.
        alpha: final fraction of the learning rate for the cosine schedules.
        decay_rate: factor per ``decay_steps`` for ``exponential``.

    Returns:
        A float (constant) or a ``LearningRateSchedule``.

    Raises:
        ValueError: unknown ``schedule``, or a decaying schedule without positive ``decay_steps``.

    Example::

        lr = learning_rate_schedule("cosine", learning_rate=0.01, decay_steps=1000)
    """
    if schedule not in SCHEDULES:
        raise ValueError(
            f"schedule={schedule!r} is not a known schedule; choose one of {', '.join(repr(s) for s in SCHEDULES)}."
        )
    if schedule == "constant":
        return float(learning_rate)
    if not decay_steps or int(decay_steps) <= 0:
        raise ValueError(f"schedule={schedule!r} needs decay_steps > 0, got decay_steps={decay_steps!r}.")
    schedules = tf_keras.optimizers.schedules
    if schedule == "cosine":
        return schedules.CosineDecay(float(learning_rate), int(decay_steps), alpha=alpha)
    if schedule == "warmup_cosine":
        return schedules.CosineDecay(
            0.0, int(decay_steps), alpha=alpha, warmup_target=float(learning_rate), warmup_steps=int(warmup_steps)
        )
    return schedules.ExponentialDecay(float(learning_rate), int(decay_steps), decay_rate)


def make_optimizer(
    name: str = "adam",
    learning_rate: float = 1e-3,
    schedule: str = "constant",
    decay_steps: Optional[int] = None,
    warmup_steps: int = 0,
    **kwargs: Any,
) -> tf_keras.optimizers.Optimizer:
    """A Keras optimizer with a learning-rate schedule.

    Args:
        name: one of ``OPTIMIZERS`` (``adam``, ``lazy_adam``, ``adamw``, ``adagrad``, ``sgd``,
            ``rmsprop``).
        learning_rate, schedule, decay_steps, warmup_steps: see ``learning_rate_schedule``.
        **kwargs: passed to the optimizer (e.g. ``clipnorm=1.0``).

    Raises:
        ValueError: unknown ``name`` or schedule.

    Example::

        model.compile(optimizer=make_optimizer("adagrad", learning_rate=0.1))
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"optimizer name={name!r} is not known; choose one of {', '.join(repr(n) for n in OPTIMIZERS)}."
        )
    rate = learning_rate_schedule(schedule, learning_rate, decay_steps=decay_steps, warmup_steps=warmup_steps)
    return OPTIMIZERS[name](learning_rate=rate, **kwargs)


def current_learning_rate(optimizer: Any) -> float:
    """The learning rate the optimizer uses at its current step (schedules evaluated)."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    rate = optimizer.learning_rate
    if isinstance(rate, tf_keras.optimizers.schedules.LearningRateSchedule):
        rate = rate(optimizer.iterations)
    return float(rate.numpy() if hasattr(rate, "numpy") else rate)
