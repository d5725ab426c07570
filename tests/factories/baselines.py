"""Serialization cases of the closed-form baselines (EASE, ItemKNN)."""

import numpy as np
import tensorflow as tf

from factories import Case
from tfrecs.models import EASE, ItemKNN

ITEMS = np.array([f"i{i}" for i in range(12)])


def _histories():
    rng = np.random.default_rng(0)
    rows = [list(rng.choice(ITEMS, size=4, replace=False)) + [""] for _ in range(16)]
    return np.array(rows)


def _case(model):
    histories = _histories()
    model.fit(tf.data.Dataset.from_tensor_slices({"history": histories}).batch(8))
    return Case(model, {"history": tf.constant(histories[:4])}, probe=_scores, train=False)


def _scores(model, batch):
    return {"scores": np.asarray(model.scores(batch))}


FACTORIES = {
    "ease": lambda: _case(EASE(ITEMS, l2=5.0)),
    "itemknn": lambda: _case(ItemKNN(ITEMS, neighbours=3)),
}
