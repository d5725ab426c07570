"""One decorator that makes a tfrecs class a first-class Keras object.

``export`` registers a class as Keras-serializable under the package name ``tfrecs`` (so
``tf_keras.models.load_model`` and ``tf_keras.layers.deserialize`` find it), records its
public path (``tfrecs.models.DeepFM``), and, for models, the snake_case name that the CLI,
notebooks and benchmarks use (``tfrecs.models.get("deepfm")``).

Example::

    @export("tfrecs.layers.FMInteraction")
    class FMInteraction(tf_keras.layers.Layer): ...

    @export("tfrecs.models.DeepFM", name="deepfm")
    class DeepFM(CTRModel): ...
"""

from typing import Callable, Dict, List, Optional, TypeVar

import tf_keras

PACKAGE = "tfrecs"

T = TypeVar("T", bound=type)

_MODELS_BY_NAME: Dict[str, type] = {}
_EXPORTED: Dict[str, type] = {}


def export(public_path: str, name: Optional[str] = None) -> Callable[[T], T]:
    """Class decorator: Keras-serializable as ``tfrecs>ClassName``, public at ``public_path``.

    Args:
        public_path: where users import the class from, e.g. ``"tfrecs.models.SASRec"``;
            its last part must be the class name.
        name: snake_case model name for ``tfrecs.models.get`` (models only).

    Raises:
        ValueError: the path does not end in the class name, or the name or path is
            already taken by another class.
    """

    def decorate(cls: T) -> T:
        if public_path.rsplit(".", 1)[-1] != cls.__name__:
            raise ValueError(f"export({public_path!r}) names a class other than {cls.__name__}")
        for table, key in ((_EXPORTED, public_path), (_MODELS_BY_NAME, name)):
            if key is None:
                continue
            known = table.get(key)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise ValueError(f"{key!r} is already registered to {known.__name__}")
            table[key] = cls
        cls = tf_keras.saving.register_keras_serializable(package=PACKAGE)(cls)
        cls.public_path = public_path
        if name is not None:
            cls.registry_name = name
        return cls

    return decorate


def model_class(name: str) -> type:
    """The model class exported under the snake_case ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    try:
        return _MODELS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(model_names())}") from None


def model_names() -> List[str]:
    """Sorted snake_case names of every exported model."""
    return sorted(_MODELS_BY_NAME)


def exported_classes() -> Dict[str, type]:
    """Public path -> class for every exported model and layer (for tests and docs)."""
    return dict(_EXPORTED)
