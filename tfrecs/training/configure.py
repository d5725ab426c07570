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
) -> tf.distribute.Strategy:
    """Sets the global precision policy and returns the distribution strategy.

    Call it at program start, before building models (``multi_worker`` must be created
    before any other TensorFlow op). Both names are checked before anything changes.

    Args:
        strategy: ``"auto"``, ``"one_device"``, ``"mirrored"``, ``"multi_worker"`` or a
            ``tf.distribute.Strategy`` (see ``get_strategy``).
        precision: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
        devices: devices for ``"mirrored"``.

    Returns:
        The strategy; build and compile the model under its ``scope()``.

    Raises:
        ValueError: unknown strategy or precision name, ``multi_worker`` without
            ``TF_CONFIG``.

    Example::

        strategy = configure("auto", "mixed_bfloat16")
    """
    check_precision(precision)
    if isinstance(strategy, str):
        check_strategy_name(strategy)
    chosen = get_strategy(strategy, devices)
    set_precision(precision)
    return chosen
