"""Tiny models and layers for the serialization tests, one module per family.

Each module defines ``FACTORIES: Dict[str, Callable[[], Case]]``; a ``Case`` is a built-able
object plus the batch that trains and probes it. ``tests/test_model_serialization.py`` and
``tests/test_layer_serialization.py`` collect every module here.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional


@dataclass
class Case:
    """One serialization case.

    Attributes:
        obj: a fresh, uncompiled model (or layer) on small synthetic data.
        batch: a dict of tensors (with labels for ranking models) the model trains one step on.
        probe: what to compare before and after a reload: ``probe(obj, batch) -> dict of arrays``;
            default: ``predict`` for ranking models, query embeddings for retrieval models,
            the call output for layers.
        train: whether to fit one step before saving (models: True).
    """

    obj: Any
    batch: Dict[str, Any]
    probe: Optional[Callable[[Any, Dict[str, Any]], Dict[str, Any]]] = None
    train: bool = True
    extra: Dict[str, Any] = field(default_factory=dict)
