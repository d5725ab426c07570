"""Precision policies: one name selects the Keras dtype policy every tfrecs model uses.

``float32`` computes and stores in float32. ``mixed_float16`` (GPUs) and ``mixed_bfloat16``
(TPUs, and CPUs with AVX512-BF16) keep variables in float32 and compute in 16 bits. Under
``mixed_float16`` Keras wraps the optimizer in a dynamic ``LossScaleOptimizer`` at
``compile``; the tfrecs base models then scale the loss and unscale the gradients through it.

Example::

    import tfrecs
    from tfrecs import training

    training.set_precision("mixed_float16")   # before the model is built
    with training.precision_scope("float32"):
        ...                                    # code that must run in float32
"""

import contextlib
from typing import Iterator, Tuple

import tensorflow as tf
import tf_keras

PRECISIONS: Tuple[str, ...] = ("float32", "mixed_float16", "mixed_bfloat16")


def check_precision(precision: str) -> str:
    """Returns ``precision`` if it is a known precision name.

    Raises:
        ValueError: ``precision`` is not one of ``PRECISIONS``; the message lists them.
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision={precision!r} is not a known precision; choose one of {', '.join(repr(p) for p in PRECISIONS)}."
        )
    return precision


def set_precision(precision: str = "float32") -> tf_keras.mixed_precision.Policy:
    """Sets the global Keras dtype policy; models built afterwards use it.

    Args:
        precision: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.

    Returns:
        The policy now in force.

    Raises:
        ValueError: unknown ``precision``.

    Example::

        policy = set_precision("mixed_bfloat16")
        assert policy.compute_dtype == "bfloat16"
    """
    tf_keras.mixed_precision.set_global_policy(check_precision(precision))
    return tf_keras.mixed_precision.global_policy()


def current_precision() -> str:
    """Name of the global Keras dtype policy (``"float32"`` if none was set)."""
    return tf_keras.mixed_precision.global_policy().name


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[tf_keras.mixed_precision.Policy]:
    """Sets the global dtype policy for a block, then restores the previous one.

    Example::

        with precision_scope("mixed_float16"):
            model = MyModel()          # variables float32, compute float16
    """
    previous = tf_keras.mixed_precision.global_policy()
    policy = set_precision(precision)
    try:
        yield policy
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


def is_loss_scale_optimizer(optimizer) -> bool:
    """True if ``optimizer`` scales the loss (a ``tf_keras.mixed_precision.LossScaleOptimizer``)."""
    return isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)


def force_float32(layer: tf_keras.layers.Layer) -> tf_keras.layers.Layer:
    """Makes ``layer`` and all its sublayers compute in float32, whatever the global policy.

    TFRS tasks are Keras layers: built under ``mixed_float16`` they would cast their first
    input (query embeddings, or labels) to float16. Losses and metrics must stay float32.
    Uses tf_keras's ``Layer._set_dtype_policy`` (Keras 2 has no public setter).

    Example::

        task = force_float32(tfrs.tasks.Ranking(loss=...))
    """
    float32 = tf_keras.mixed_precision.Policy("float32")
    for sublayer in layer._flatten_layers(recursive=True, include_self=True):
        if sublayer.dtype_policy.name != "float32":
            sublayer._set_dtype_policy(float32)
    return layer


def to_float32(value):
    """Casts every floating tensor in a nested structure to float32 (other dtypes unchanged).

    Scores, logits and losses leave the model in float32 whatever the compute policy.
    """

    def cast(x):
        x = tf.convert_to_tensor(x)
        return tf.cast(x, tf.float32) if x.dtype.is_floating and x.dtype != tf.float32 else x

    return tf.nest.map_structure(cast, value)
