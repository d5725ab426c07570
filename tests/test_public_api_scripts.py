"""A user's own training scripts on the public API alone (no ``tfrecs.recipes``), run as programs.

Each script imports only ``tfrecs.data``, ``tfrecs.pipelines``, ``tfrecs.models``,
``tfrecs.training`` and ``tfrecs.evaluation``, trains on the real ML-100K for a few steps and
prints JSON answers in raw ids; the test checks them and that no recipe module was loaded.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

PREAMBLE = """
import json, sys
import tfrecs
import numpy as np
import tensorflow as tf
import tf_keras
from tfrecs.data import load_dataset, make_split
from tfrecs import models, pipelines, training, evaluation
ml = load_dataset("ml-100k")
"""

EPILOGUE = """
assert not [m for m in sys.modules if m.startswith("tfrecs.recipes")], "a recipe module was imported"
print("RESULT " + json.dumps(result))
"""

SCRIPTS = {
    "deepfm": """
from tfrecs.pipelines.ctr_view import CTR_SPLIT
split = make_split(ml, CTR_SPLIT, seed=2020)
data = pipelines.load_ctr_data(split)
model = models.DeepFM(data.spec, data.features, embedding_dim=8, hidden_units=(32, 16))
model.compile(optimizer=training.make_optimizer("adam", learning_rate=1e-3), metrics=["AUC"])
model.fit(data.dataset("train", 1024, shuffle=True).take(20), epochs=1, verbose=0)
test = data.dataset("test", 4096)
probabilities = model.predict(test, verbose=0).reshape(-1)
labels = data.columns["test"]["label"]
result = {"min": float(probabilities.min()), "max": float(probabilities.max()), "n": int(len(probabilities)),
          "auc": float(evaluation.auc(labels, probabilities))}
""",
    "sasrec": """
split = make_split(ml, "loo")
data = pipelines.SequenceData.from_split(split)
model = models.SASRec(data.item_ids, data.counts, dim=16, max_len=20, num_heads=1)
model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
model.fit(data.causal_batches(max_len=20, batch_size=128).take(20), epochs=1, verbose=0)
histories = data.histories("test", 20)
user_ids = np.asarray(split.train.user_index.ids)
row = int(np.flatnonzero(user_ids == "196")[0])
ids, scores = model.recommend({"history": tf.constant(histories[row:row + 1])}, k=10,
                              exclude=[[h for h in histories[row] if h]])
result = {"ids": [x.decode() for x in ids.numpy()[0]], "scores": scores.numpy()[0].tolist(),
          "history": [h for h in histories[row].tolist() if h], "catalogue": [str(i) for i in data.item_ids[:5]]}
""",
    "two_tower": """
split = make_split(ml, "random")
data = pipelines.TwoTowerData.from_split(split, history_length=20)
model = models.TwoTower(data.spec, data.query_features, data.candidate_features, embedding_dim=16,
                        query_units=(32, 16), candidate_units=(32, 16))
model.compile(optimizer=training.make_optimizer("adam", learning_rate=1e-3))
model.fit(data.training_dataset(512, seed=0).take(30), epochs=1, verbose=0)
model.index_candidates({k: tf.constant(v) for k, v in data.candidates.items()})
user_ids = np.asarray(split.train.user_index.ids)
row = int(np.flatnonzero(user_ids == "196")[0])
query = {k: tf.constant(v[row:row + 1]) for k, v in data.user_features.items() if k in data.query_features}
seen = split.train.interactions["item_id"][split.train.interactions["user_id"] == "196"].tolist()
ids, scores = model.recommend(query, k=10, exclude=[seen])
result = {"ids": [x.decode() for x in ids.numpy()[0]], "scores": scores.numpy()[0].tolist(), "seen": seen}
""",
}


def _run(name: str, tmp_path) -> dict:
    path = tmp_path / f"train_{name}.py"
    path.write_text(PREAMBLE + textwrap.dedent(SCRIPTS[name]) + EPILOGUE)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=600, env=env)
    assert completed.returncode == 0, completed.stderr[-4000:]
    line = [text for text in completed.stdout.splitlines() if text.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def test_deepfm_script_predicts_probabilities(tmp_path, ml100k):
    result = _run("deepfm", tmp_path)
    assert result["n"] == 10_000
    assert 0.0 < result["min"] <= result["max"] < 1.0
    assert result["auc"] > 0.6  # a few hundred steps learn the popular-item / user-mean signal


def test_sasrec_script_recommends_unseen_raw_ids(tmp_path, ml100k):
    result = _run("sasrec", tmp_path)
    item_ids = {str(i) for i in ml100k.item_index.ids}
    assert len(result["ids"]) == 10 and len(set(result["ids"])) == 10
    assert set(result["ids"]) <= item_ids
    assert not set(result["ids"]) & set(result["history"])
    assert np.all(np.diff(result["scores"]) <= 1e-6)


def test_two_tower_script_recommends_unseen_raw_ids(tmp_path, ml100k):
    result = _run("two_tower", tmp_path)
    item_ids = {str(i) for i in ml100k.item_index.ids}
    assert len(set(result["ids"])) == 10 and set(result["ids"]) <= item_ids
    assert not set(result["ids"]) & set(result["seen"])
    assert np.all(np.diff(result["scores"]) <= 1e-6)
