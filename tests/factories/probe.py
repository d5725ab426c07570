"""What the serialization tests compare before and after a reload, and how cases are collected."""

import importlib
import pkgutil
from typing import Callable, Dict

import numpy as np
import tensorflow as tf

import factories


def all_factories(kind: str) -> Dict[str, Callable]:
    """Every ``FACTORIES`` entry of the family modules (``kind="models"``) or ``layers``."""
    found: Dict[str, Callable] = {}
    for module_info in pkgutil.iter_modules(factories.__path__):
        if module_info.name in ("probe",) or (kind == "layers") != (module_info.name == "layers"):
            continue
        module = importlib.import_module(f"factories.{module_info.name}")
        for name, factory in getattr(module, "FACTORIES", {}).items():
            if name in found:
                raise ValueError(f"two factories are named {name!r}")
            found[name] = factory
    return found


def as_arrays(value) -> Dict[str, np.ndarray]:
    if isinstance(value, dict):
        return {str(k): np.asarray(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return {f"output_{i}": np.asarray(v) for i, v in enumerate(value)}
    return {"output": np.asarray(value)}


def default_probe(obj, batch) -> Dict[str, np.ndarray]:
    """Ranking: ``predict``; retrieval: query (and candidate) embeddings; anything else: its call."""
    from tfrecs.models import RankingModel, RetrievalModel

    if isinstance(obj, RankingModel):
        return as_arrays(obj.predict(tf.data.Dataset.from_tensors(batch), verbose=0))
    if isinstance(obj, RetrievalModel):
        out = {"query": np.asarray(obj(batch, training=False))}
        try:
            out["candidate"] = np.asarray(obj.candidate_embeddings(batch))
        except (KeyError, ValueError, NotImplementedError):
            pass
        return out
    return as_arrays(obj(batch, training=False) if not isinstance(batch, tuple) else obj(*batch, training=False))


def probe(case, obj) -> Dict[str, np.ndarray]:
    return (case.probe or default_probe)(obj, case.batch)
