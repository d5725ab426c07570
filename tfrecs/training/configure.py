"""``configure``: strategy and precision from two names, so a user changes one argument.

Example::

    import tfrecs
    from tfrecs import training

    strategy = training.configure(strategy="mirrored", precision="mixed_float16")
    with strategy.scope():
        model = MyModel()
        model.compile(optimizer="adam")    # wrapped in a LossScaleOptimizer automatically
"""

from typing import Any, Optional, Sequence

import tensorflow as tf

from tfrecs.core.precision import check_precision, set_precision
from tfrecs.training.strategy import check_strategy_name, get_strategy


def configure(
    strategy: Any = "auto",
    precision: str = "float32",
    devices: Optional[Sequence[str]] = None,
    min_shard_bytes: Optional[int] = None,
) -> tf.distribute.Strategy:
    """Sets the global precision policy and returns the distribution strategy.

    Call it at program start, before building models (``multi_worker`` and
    ``parameter_server`` must be created before any other TensorFlow op). Both names are
    checked before anything changes.

    Args:
        strategy: ``"auto"``, ``"one_device"``, ``"mirrored"``, ``"multi_worker"``,
            ``"parameter_server"`` or a ``tf.distribute.Strategy`` (see ``get_strategy``).
        precision: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
        devices: devices for ``"mirrored"``.
        min_shard_bytes: smallest variable shard for ``"parameter_server"`` (default: the
            strategy already made for this ``TF_CONFIG``, else 256 KiB).

    Returns:
        The strategy; build and compile the model under its ``scope()``.

    Raises:
        ValueError: unknown strategy or precision name, ``multi_worker`` or
            ``parameter_server`` without a usable ``TF_CONFIG``.

    Example::

        strategy = configure("auto", "mixed_bfloat16")
    """
    check_precision(precision)
    if isinstance(strategy, str):
        check_strategy_name(strategy)
    chosen = get_strategy(strategy, devices, min_shard_bytes)
    set_precision(precision)
    return chosen
