"""``get_config`` / ``from_config`` read off the constructor: one rule for every tfrecs class.

Every public model and layer takes flat keyword hyper-parameters and stores each one as an
attribute of the same name (as TFRS ``Cross`` and keras-rs ``FeatureCross`` do). The
config is then the constructor's arguments read back from those attributes, converted to
JSON-compatible values: objects with ``to_config()`` (a ``FeatureSpec``) become their dict,
NumPy arrays and tuples become lists. ``from_config(get_config())`` rebuilds the same
architecture because constructors accept those plain forms back.

Example::

    @export("tfrecs.layers.Scale")
    class Scale(ConfigFromInit, tf_keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

    Scale.from_config(Scale(3.0).get_config()).factor   # 3.0
"""

import inspect
from typing import Any, Dict, List

import numpy as np
import tf_keras


def config_value(value: Any) -> Any:
    """``value`` as a JSON-compatible config value (recursively)."""
    if hasattr(value, "to_config"):
        return value.to_config()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [config_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): config_value(item) for key, item in value.items()}
    if isinstance(value, (tf_keras.layers.Layer, tf_keras.initializers.Initializer, tf_keras.regularizers.Regularizer)):
        return tf_keras.saving.serialize_keras_object(value)
    return value


def constructor_arguments(cls: type) -> List[str]:
    """Names of ``cls.__init__``'s own arguments (without ``self`` and ``**kwargs``)."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


class ConfigFromInit:
    """Mixin (put it before the Keras base class): config = constructor arguments.

    Raises:
        AttributeError: in ``get_config``, when a constructor argument was not stored as an
            attribute of the same name (the class breaks the flat-hyper-parameter rule).
    """

    def get_config(self) -> Dict[str, Any]:
        config = dict(tf_keras.layers.Layer.get_config(self))
        for name in constructor_arguments(type(self)):
            if not hasattr(self, name):
                raise AttributeError(
                    f"{type(self).__name__}.__init__ takes {name!r} but does not store it as self.{name}; "
                    "tfrecs classes keep every hyper-parameter as an attribute of the same name"
                )
            config[name] = config_value(getattr(self, name))
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects=None):
        return cls(**config)
