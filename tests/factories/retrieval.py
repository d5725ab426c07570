"""Serialization cases of the retrieval family: TwoTower, NeuMF (and its GMF / MLP parts), LightGCN, PinSage,
Popularity.

Tiny deterministic synthetic data: 10 users, 12 items, 40 interactions, raw string ids.
"""

import numpy as np
import tensorflow as tf

from factories import Case
from tfrecs.data import Feature, FeatureSpec
from tfrecs.models import GMF, NCFMLP, LightGCN, NeuMF, PinSage, Popularity, TwoTower

GENRES = ("action", "comedy", "drama")


def _rows():
    rng = np.random.default_rng(7)
    users, items = rng.integers(0, 10, 40), rng.integers(0, 12, 40)
    genres = np.empty(40, dtype=object)
    genres[:] = [[GENRES[i % 3], GENRES[(i + 1) % 3]] if i % 2 else [GENRES[i % 3]] for i in items]
    return {
        "user_id": np.array([f"u{u}" for u in users]),
        "item_id": np.array([f"i{i}" for i in items]),
        "age": (18 + 3 * users).astype(np.int64),
        "genres": genres,
        "label": (rng.random(40) < 0.5).astype(np.float32),
    }


def _id_spec(rows):
    return FeatureSpec([Feature("user_id", "categorical"), Feature("item_id", "categorical")]).fit(rows)


def _id_batch(rows, n=8, **extra):
    batch = {"user_id": tf.constant(rows["user_id"][:n]), "item_id": tf.constant(rows["item_id"][:n])}
    batch.update({key: tf.constant(value[:n]) for key, value in extra.items()})
    return batch


def two_tower() -> Case:
    rows = _rows()
    spec = FeatureSpec(
        [
            Feature("user_id", "categorical"),
            Feature("age", "numeric", num_buckets=3),
            Feature("item_id", "categorical"),
            Feature("genres", "sequence", max_length=2),
        ]
    ).fit(rows)
    genres = np.array([list(g) + [""] * (2 - len(g)) for g in rows["genres"][:8]])
    batch = {
        **_id_batch(rows),
        "age": tf.constant(rows["age"][:8]),
        "genres": tf.constant(genres),
        "candidate_sampling_probability": tf.fill([8], 1.0 / 12),
    }
    model = TwoTower(
        spec,
        ["user_id", "age"],
        ["item_id", "genres"],
        embedding_dim=4,
        query_units=(8, 4),
        candidate_units=(4,),
        dropout=0.0,
    )
    return Case(model, batch)


def ncf(cls, **kwargs):
    def build() -> Case:
        rows = _rows()
        return Case(cls(_id_spec(rows), **kwargs), _id_batch(rows, label=rows["label"]))

    return build


def lightgcn(objective: str):
    def build() -> Case:
        rows = _rows()
        model = LightGCN.from_interactions(
            _id_spec(rows), rows["user_id"], rows["item_id"], embedding_dim=4, num_layers=2, objective=objective
        )
        extra = {"negative_item_id": rows["item_id"][::-1]} if objective == "bpr" else {}
        return Case(model, _id_batch(rows, **extra))

    return build


def pinsage() -> Case:
    rows = _rows()
    items = np.unique(rows["item_id"])
    genres = np.eye(len(GENRES), dtype=np.float32)[np.arange(len(items)) % len(GENRES)]
    model = PinSage.from_interactions(
        _id_spec(rows),
        rows["user_id"],
        rows["item_id"],
        item_features=genres,
        feature_item_ids=items,
        num_walks=8,
        num_neighbors=3,
        num_user_neighbors=4,
        num_layers=2,
        embedding_dim=4,
        logq_correction=False,
    )
    hard = np.stack([rows["item_id"][::-1][:8], np.full(8, "")], axis=1)  # one hard negative, one padded slot
    batch = _id_batch(rows)
    batch["hard_negative_item_id"] = tf.constant(hard)
    return Case(model, batch)


def popularity() -> Case:
    rows = _rows()
    ids, counts = np.unique(rows["item_id"], return_counts=True)
    return Case(Popularity(counts, item_ids=ids), tf.constant([0, 1, 2], tf.int64), train=False)


FACTORIES = {
    "two_tower": two_tower,
    "neumf": ncf(NeuMF, gmf_dim=4, mlp_embedding_dim=4, mlp_units=(8, 4)),
    "gmf": ncf(GMF, gmf_dim=4),
    "ncf_mlp": ncf(NCFMLP, mlp_embedding_dim=4, mlp_units=(8, 4)),
    "lightgcn": lightgcn("bpr"),
    "lightgcn_softmax": lightgcn("softmax"),
    "pinsage": pinsage,
    "pop": popularity,
}
