"""The chief of a parameter-server job (launched by tests/test_parameter_server.py).

    python parameter_server_fit.py --out DIR

Reads TF_CONFIG (a chief, 2 workers, 2 ps), creates ``strategy="parameter_server"`` with a
small ``min_shard_bytes`` (so a tiny table is split), trains DeepFM through
``tfrecs.training.fit`` and exports it with ``tfrecs.export.export_ranking``, then trains a
Two-Tower model a few steps the same way. Writes to DIR: ``result.json`` (per model: the
devices of every shard of every embedding table, the epoch losses; the export path) and
``requests.npz`` / ``expected.npz`` (raw features and the in-memory DeepFM's probabilities
for them).
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs import training  # noqa: E402

STRATEGY = training.configure(strategy="parameter_server", min_shard_bytes=1024)  # before any other op

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

from tfrecs.data import Feature, FeatureSpec  # noqa: E402
from tfrecs.export import export_ranking  # noqa: E402
from tfrecs.export.ranking import ranking_outputs, task_kinds  # noqa: E402
from tfrecs.layers import FeatureEmbedding  # noqa: E402
from tfrecs.models import DeepFM, TwoTower  # noqa: E402

ROWS, BATCH, STEPS, EPOCHS = 2048, 64, 8, 3
FEATURES = ["user_id", "item_id", "genre", "age"]


def columns():
    """Rows whose click depends on the genre and the age (learnable in a few steps) and raw ids."""
    rng = np.random.default_rng(0)
    genre = rng.integers(0, 6, ROWS)
    age = rng.normal(35.0, 10.0, ROWS).astype(np.float32)
    logit = 2.5 * np.array([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5])[genre] + 0.15 * (age - 35.0)
    return {
        "user_id": np.asarray([f"u{u}" for u in rng.integers(0, 300, ROWS)]),
        "item_id": np.asarray([f"i{i}" for i in rng.integers(0, 1000, ROWS)]),
        "genre": np.asarray([f"g{g}" for g in genre]),
        "age": age,
        "label": (rng.random(ROWS) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32),
    }


def tables(model):
    """Every FeatureEmbedding's fused table: its type, shape and shards (device, rows)."""
    found = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, FeatureEmbedding):
            table = layer.table.embeddings
            found[layer.name] = {
                "type": type(table).__name__,
                "shape": [int(d) for d in table.shape],
                "shards": [{"device": v.device, "rows": int(v.shape[0])} for v in getattr(table, "variables", [table])],
            }
    return found


def two_tower(rows, spec):
    """Two-Tower (in-batch softmax) trained a few steps under the same strategy, from a
    ``DatasetCreator`` (each worker builds its own dataset)."""
    with STRATEGY.scope():
        model = TwoTower(
            spec,
            ["user_id", "age"],
            ["item_id", "genre"],
            embedding_dim=8,
            query_units=(8,),
            candidate_units=(8,),
            dropout=0.0,
            logq_correction=False,
        )
        model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    creator = tf_keras.utils.experimental.DatasetCreator(  # the other input fit takes under PSS
        lambda context: tf.data.Dataset.from_tensor_slices(rows).shuffle(ROWS, seed=1).batch(BATCH).repeat()
    )
    history = training.fit(model, creator, epochs=2, steps_per_epoch=STEPS, tensorboard=False, verbose=0)
    return {"tables": tables(model), "loss": [float(x) for x in history.history["loss"]]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    tf_keras.utils.set_random_seed(0)
    rows = columns()
    spec = FeatureSpec([Feature(n, "numeric" if n == "age" else "categorical") for n in FEATURES]).fit(rows)
    data = tf.data.Dataset.from_tensor_slices(rows).shuffle(ROWS, seed=0).batch(BATCH, drop_remainder=True)
    with STRATEGY.scope():
        model = DeepFM(spec, embedding_dim=8, hidden_units=(16,), dropout=0.0)
        model.compile(optimizer=tf_keras.optimizers.Adam(0.02))
    history = training.fit(
        model,
        data,
        epochs=EPOCHS,
        steps_per_epoch=STEPS,
        run_dir=os.path.join(args.out, "run"),
        tensorboard=False,
        verbose=0,
    )

    export = export_ranking(
        model, os.path.join(args.out, "saved_models"), "deepfm", feature_spec=spec, features=FEATURES, columns=rows
    )
    requests = {name: rows[name][:16] for name in FEATURES}
    requests["item_id"] = requests["item_id"].copy()
    requests["item_id"][0] = "never-seen"  # an OOV id is served too
    kinds = task_kinds(model)
    expected = ranking_outputs(model, {k: tf.constant(v) for k, v in requests.items()}, kinds)
    np.savez(os.path.join(args.out, "requests.npz"), **requests)
    np.savez(os.path.join(args.out, "expected.npz"), **{k: v.numpy() for k, v in expected.items()})
    result = {
        "deepfm": {"tables": tables(model), "loss": [float(x) for x in history.history["loss"]]},
        "two_tower": two_tower(rows, spec),
        "export": export.path,
        "strategy": type(STRATEGY).__name__,
        "reused": training.configure(strategy="parameter_server") is STRATEGY,  # as a recipe's configure
    }
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
