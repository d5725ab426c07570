"""tfrecs: TensorFlow / Keras recommenders built on TensorFlow Recommenders (TFRS).

Importing ``tfrecs`` selects the Keras 2 code path (``tf_keras``) that TFRS needs, so it
must happen before TensorFlow is first imported::

    import tfrecs            # first
    import tensorflow as tf  # now tf.keras is tf_keras

If TensorFlow was already imported with Keras 3 active, ``import tfrecs`` raises an
``ImportError`` that says how to fix it.
"""

import os
import sys

__version__ = "0.1.0"


def _select_legacy_keras() -> None:
    """Sets ``TF_USE_LEGACY_KERAS=1``; fails if an earlier import already bound Keras 3.

    ``tf.keras`` is resolved lazily on first access, so setting the variable is enough
    even after ``import tensorflow``, unless something already touched ``tf.keras``.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    tf_module = sys.modules.get("tensorflow")
    if tf_module is None:
        return
    keras_module = getattr(tf_module, "keras", None)
    keras_name = getattr(keras_module, "__name__", "")
    if keras_name and not keras_name.startswith("tf_keras"):
        raise ImportError(
            "tfrecs needs the Keras 2 API (tf_keras) because TensorFlow Recommenders refuses "
            f"Keras 3, but tf.keras was already bound to {keras_name!r} (Keras 3) before tfrecs "
            "was imported. Import tfrecs before tensorflow, or set the environment variable "
            "TF_USE_LEGACY_KERAS=1 before starting Python."
        )


_select_legacy_keras()
