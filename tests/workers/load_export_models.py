"""Tiny raw-feature models and data for the export tests (not imported by the load_export workers).

Import ``tfrecs`` first. The models read RAW features (string user / item ids, int64 age,
padded string genres) through FeatureSpec lookup layers inside the model, as the tfrecs
contract asks, so their exports serve raw features.
"""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.data import Feature, FeatureSpec
from tfrecs.models.base import RankingModel, RetrievalModel, ranking_task

NUM_USERS = 40
NUM_ITEMS = 500
DIM = 8
GENRES = ("action", "comedy", "drama", "horror", "romance")


def catalogue(num_items: int = NUM_ITEMS) -> dict:
    """Candidate columns in catalogue order: string ids, a list column of genres, titles."""
    rng = np.random.default_rng(1)
    genres = np.empty(num_items, dtype=object)
    for row in range(num_items):
        genres[row] = tuple(rng.choice(GENRES, size=1 + row % 3, replace=False))
    return {
        "item_id": np.asarray([f"i{i}" for i in range(num_items)]),
        "genres": genres,
        "release_year": (1950 + np.arange(num_items) % 60).astype(np.int64),
    }


def titles(num_items: int = NUM_ITEMS) -> np.ndarray:
    return np.asarray([f"Movie {i}" for i in range(num_items)], dtype=object)


def interactions(n: int = 600, num_items: int = NUM_ITEMS) -> dict:
    """Joined training rows: user features, item features and a click label."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, NUM_USERS, n)
    items = rng.integers(0, num_items, n)
    items_table = catalogue(num_items)
    return {
        "user_id": np.asarray([f"u{u}" for u in users]),
        "age": (18 + users % 50).astype(np.int64),
        "item_id": items_table["item_id"][items],
        "genres": items_table["genres"][items],
        "release_year": items_table["release_year"][items],
        "click": ((users + items) % 2).astype(np.float32),
        "rating": (1 + (users * items) % 5).astype(np.float32),
    }


def split(n: int = 600):
    """The ``interactions()`` rows as a random split with user (age) and item tables, for artifacts."""
    from tfrecs.data import RecDataset, make_split

    rows = interactions(n)
    users = np.asarray([f"u{u}" for u in range(NUM_USERS)])
    dataset = RecDataset(
        "tiny",
        {"user_id": rows["user_id"], "item_id": rows["item_id"]},
        users={"user_id": users, "age": (18 + np.arange(NUM_USERS) % 50).astype(np.int64)},
        items=catalogue(),
    )
    return make_split(dataset, "random", seed=0)


def feature_spec(columns: dict) -> FeatureSpec:
    return FeatureSpec(
        [
            Feature("user_id", "categorical"),
            Feature("age", "numeric"),
            Feature("item_id", "categorical"),
            Feature("genres", "sequence", max_length=3),
            Feature("release_year", "numeric"),
        ]
    ).fit(columns)


class TinyTwoTower(RetrievalModel):
    """user_id lookup + embedding and normalised age -> query; item_id lookup + embedding -> candidate."""

    def __init__(self, spec: FeatureSpec):
        super().__init__(candidate_id_key="item_id", cross_replica_negatives=False)
        self.user_lookup = spec.lookup_layer("user_id")
        self.item_lookup = spec.lookup_layer("item_id")
        self.user_embedding = tf_keras.layers.Embedding(spec["user_id"].vocabulary_size, DIM)
        self.item_embedding = tf_keras.layers.Embedding(spec["item_id"].vocabulary_size, DIM)
        self.age = spec.normalization_layer("age")
        self.age_projection = tf_keras.layers.Dense(DIM, use_bias=False)

    def compute_query_embeddings(self, features, training=False):
        user = self.user_embedding(self.user_lookup(features["user_id"]))
        age = self.age(tf.cast(features["age"], tf.float32)[:, None])
        return user + self.age_projection(age)

    def compute_candidate_embeddings(self, features, training=False):
        return self.item_embedding(self.item_lookup(features["item_id"]))


class QuerylessRetrieval(RetrievalModel):
    """A retrieval model that forgot its query tower (an export must refuse it)."""

    def __init__(self, spec: FeatureSpec):
        super().__init__(candidate_id_key="item_id", cross_replica_negatives=False)
        self.item_lookup = spec.lookup_layer("item_id")
        self.item_embedding = tf_keras.layers.Embedding(spec["item_id"].vocabulary_size, DIM)

    def compute_candidate_embeddings(self, features, training=False):
        return self.item_embedding(self.item_lookup(features["item_id"]))


class TinyRanking(RankingModel):
    """Two tasks (binary ``click``, regression ``rating``) on user, item, age and genres."""

    FEATURES = ("user_id", "age", "item_id", "genres")

    def __init__(self, spec: FeatureSpec, tasks=("click", "rating")):
        kinds = {"click": "binary", "rating": "regression"}
        super().__init__(tasks={name: ranking_task(kinds[name], metric_prefix=f"{name}/") for name in tasks})
        self.lookups = {name: spec.lookup_layer(name) for name in ("user_id", "item_id", "genres")}
        self.embeddings = {
            name: tf_keras.layers.Embedding(spec[name].vocabulary_size, DIM)
            for name in ("user_id", "item_id", "genres")
        }
        self.age = spec.normalization_layer("age")
        self.hidden = tf_keras.layers.Dense(16, activation="relu")
        self.heads = {name: tf_keras.layers.Dense(1, name=f"head_{name}") for name in tasks}

    def call(self, features, training=False):
        user = self.embeddings["user_id"](self.lookups["user_id"](features["user_id"]))
        item = self.embeddings["item_id"](self.lookups["item_id"](features["item_id"]))
        genre_ids = self.lookups["genres"](features["genres"])
        genre_mask = tf.cast(genre_ids > 0, tf.float32)[:, :, None]
        genres = tf.reduce_sum(self.embeddings["genres"](genre_ids) * genre_mask, axis=1)
        age = self.age(tf.cast(features["age"], tf.float32)[:, None])
        hidden = self.hidden(tf.concat([user, item, genres, age], axis=1))
        logits = {name: head(hidden) for name, head in self.heads.items()}
        return logits if len(logits) > 1 else next(iter(logits.values()))


def fitted(model, rows: dict, batch_size: int = 100):
    """Compiles and trains ``model`` for one epoch on ``rows`` (dense columns), so it has an optimizer."""
    dense = dict(rows)
    dense["genres"] = np.asarray([list(g) + [""] * (3 - len(g)) for g in rows["genres"]], dtype=object)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    model.fit(tf.data.Dataset.from_tensor_slices(dense).batch(batch_size), epochs=1, verbose=0)
    return model


WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load_export_signature.py")


def as_bytes(values) -> np.ndarray:
    """String arrays as numpy bytes (what the loader process returns), other arrays unchanged."""
    values = np.asarray(values)
    return values.astype("S") if values.dtype.kind in "OUS" else values


def load_in_fresh_process(exports, directory: str) -> list:
    """Runs each export's serving_default in ONE new Python process (TF + ScaNN only).

    Args:
        exports: ``[(export_dir, inputs dict), ...]``.
        directory: scratch directory for the npz files.

    Returns:
        One dict per export: ``tf1/<name>``, ``tf2/<name>`` and ``warmup/<i>/<name>`` outputs.
    """
    outputs_path = os.path.join(directory, "outputs.npz")
    arguments = []
    for position, (export_dir, inputs) in enumerate(exports):
        inputs_path = os.path.join(directory, f"inputs{position}.npz")
        np.savez(inputs_path, **{name: as_bytes(value) for name, value in inputs.items()})
        arguments += [inputs_path, export_dir]
    process = subprocess.run(
        [sys.executable, WORKER, outputs_path, *arguments], capture_output=True, text=True, timeout=300
    )
    assert process.returncode == 0, process.stderr[-4000:]
    results = [{} for _ in exports]
    with np.load(outputs_path) as outputs:
        for key in outputs.files:
            position, name = key.split("/", 1)
            results[int(position)][name] = outputs[key]
    return results
