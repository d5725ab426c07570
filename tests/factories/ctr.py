"""Serialization cases of the CTR / ranking family on a tiny synthetic FeatureSpec.

Features: three categorical ids, one numeric (``age``, normalised) and DIN's behaviour
sequence ``history`` (raw item ids, padded with ``""``); labels ``label`` (binary) and
``rating`` (regression, for the multi-task models).
"""

import numpy as np
import tensorflow as tf

from factories import Case
from tfrecs.data import Feature, FeatureSpec
from tfrecs.models import DCN, DIN, DCNv2, DeepFM, MMoE, SharedBottom, WideDeep, XDeepFM

ROWS = 32
USERS = np.array([f"u{i}" for i in range(6)])
ITEMS = np.array([f"i{i}" for i in range(10)])
GENRES = np.array(["drama", "comedy", "action"])


def _columns():
    rng = np.random.default_rng(7)
    history = rng.choice(ITEMS, size=(ROWS, 4))
    history[rng.random((ROWS, 4)) < 0.3] = ""
    return {
        "user_id": rng.choice(USERS, ROWS),
        "item_id": rng.choice(ITEMS, ROWS),
        "genre": rng.choice(GENRES, ROWS),
        "age": rng.normal(35.0, 10.0, ROWS).astype(np.float32),
        "history": history,
        "label": (rng.random(ROWS) < 0.5).astype(np.float32),
        "rating": rng.integers(1, 6, ROWS).astype(np.float32),
    }


def _spec(columns):
    return FeatureSpec(
        [
            Feature("user_id", "categorical"),
            Feature("item_id", "categorical"),
            Feature("genre", "categorical"),
            Feature("age", "numeric"),
        ]
    ).fit(columns)


def _case(build):
    columns = _columns()
    tf.keras.utils.set_random_seed(0)
    model = build(_spec(columns))
    return Case(model, {name: tf.constant(value) for name, value in columns.items()})


TINY = dict(embedding_dim=4, hidden_units=(8,))
MULTITASK = dict(
    embedding_dim=4, expert_units=(8,), tower_units=(4,), label_keys={"like": "label"}, initial_bias={"rating": 3.0}
)

FACTORIES = {
    "deepfm": lambda: _case(lambda spec: DeepFM(spec, **TINY)),
    "xdeepfm": lambda: _case(lambda spec: XDeepFM(spec, cin_layer_sizes=(4, 4), **TINY)),
    "wide_deep": lambda: _case(lambda spec: WideDeep(spec, crosses=[["user_id", "item_id"]], cross_buckets=64, **TINY)),
    "dcn": lambda: _case(lambda spec: DCN(spec, num_cross_layers=2, **TINY)),
    "dcn_v2": lambda: _case(
        lambda spec: DCNv2(spec, num_cross_layers=2, projection_dim=2, structure="parallel", **TINY)
    ),
    "din": lambda: _case(lambda spec: DIN(spec, attention_units=(4,), **TINY)),
    "mmoe": lambda: _case(lambda spec: MMoE(spec, num_experts=2, uncertainty_weighting=True, **MULTITASK)),
    "shared_bottom": lambda: _case(lambda spec: SharedBottom(spec, **MULTITASK)),
}
