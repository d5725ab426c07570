"""Every trainable model exports and serves (issue 13): recipe -> export_trained -> a fresh server process.

Each recipe trains once on ML-100K with tiny settings (one epoch), ``export_trained`` writes
it (brute force where ScaNN is not the point, so answers are exact), and ONE fresh Python
process that imports only TensorFlow, ScaNN and the TF Serving protos answers user 196 from
every export through ``tf.saved_model.load`` and replays every warmup record:

* retrieval (Two-Tower, SASRec, BERT4Rec, LightGCN, EASE, ItemKNN): k catalogue ids, none of
  the excluded ones, the in-memory model's top-k scores (brute force);
* candidate scoring (NeuMF): the same over the whole catalogue, and ``score_candidates`` gives
  the in-memory model's scores for a given list;
* ranking (every CTR model): the in-memory probabilities, in [0, 1]; MMoE / shared-bottom one
  output per task; DIN takes its behaviour ``history`` as an input;
* two-stage (Two-Tower, SASRec, EASE retrievers; DIN, MMoE, NeuMF, DeepFM re-rankers).

``export_info.json`` carries the run's record and the package versions, and
``tfrecs export --show-user`` prints a user's top-k for every kind that has one.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfrecs  # noqa: F401

from tfrecs.cli_export import _show_user
from tfrecs.export import export_trained
from tfrecs.export.artifacts import RankingArtifacts
from tfrecs.export.preview import user_query
from tfrecs.export.ranking import ranking_outputs, task_kinds
from tfrecs.export.signature import dense_column
from tfrecs.recipes import TrainConfig, recipe_names, train

USER = "196"
K = 5
RANKERS = ("deepfm", "wide_deep", "xdeepfm", "dcn", "dcn_v2", "din", "mmoe", "shared_bottom")
CTR_TINY = {"embedding_dim": 4, "hidden_units": (16,), "batch_size": 4096}
TINY = {  # one epoch, small tables and networks: the point is the export, not the figures
    "two_tower": {"embedding_dim": 8, "query_units": (16,), "candidate_units": (16,), "history_length": 20},
    "sasrec": {"dim": 16, "num_blocks": 1, "max_len": 20, "batch_size": 512},
    "bert4rec": {"dim": 16, "num_blocks": 1, "max_len": 20, "batch_size": 512},
    "lightgcn": {"embedding_dim": 8, "num_layers": 1, "max_positives": 20000},
    "pinsage": {
        "embedding_dim": 8,
        "num_layers": 1,
        "num_user_neighbors": 20,
        "max_positives": 5000,
        "table_walks": 16,
    },
    "neumf": {"gmf_dim": 4, "mlp_embedding_dim": 4, "mlp_units": (8,), "max_positives": 20000, "batch_size": 1024},
    "ease": {"l2": 300.0},
    "itemknn": {"neighbours": 50},
    "deepfm": CTR_TINY,
    "wide_deep": {**CTR_TINY, "cross_buckets": 1000},
    "xdeepfm": {**CTR_TINY, "cin_layer_sizes": (8,)},
    "dcn": {**CTR_TINY, "num_cross_layers": 1},
    "dcn_v2": {**CTR_TINY, "num_cross_layers": 1},
    "din": {**CTR_TINY, "attention_units": (8,), "history_length": 10},  # SASRec sends 20: re-windowed
    "mmoe": {"embedding_dim": 4, "num_experts": 2, "expert_units": (16,), "tower_units": (8,), "batch_size": 4096},
    "shared_bottom": {"embedding_dim": 4, "expert_units": (16,), "tower_units": (8,), "batch_size": 4096},
}
RETRIEVERS = ("two_tower", "sasrec", "bert4rec", "lightgcn", "pinsage", "ease", "itemknn")
TWO_STAGE = (("two_tower", "din"), ("two_tower", "mmoe"), ("two_tower", "neumf"), ("sasrec", "din"), ("ease", "deepfm"))
SCANN = ("two_tower", "two_tower_then_din")  # where ScaNN is the point; brute force (exact) elsewhere
EXPORTS = RETRIEVERS + ("neumf",) + RANKERS + tuple(f"{a}_then_{b}" for a, b in TWO_STAGE)

WORKER = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import scann  # noqa: F401  - registers the ScaNN ops
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2


def signature_defaults(path):  # name -> {input: default}: TF Serving fills inputs a request leaves out
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
        proto.ParseFromString(handle.read())
    signatures = proto.meta_graphs[0].signature_def
    return {name: {k: tf.make_ndarray(v) for k, v in sig.defaults.items()} for name, sig in signatures.items()}


plan, outputs = json.load(open(sys.argv[1])), {}
for key, entry in plan.items():
    loaded = tf.saved_model.load(entry["path"])
    defaults = signature_defaults(entry["path"])
    for signature, inputs_path in entry["requests"].items():
        inputs = dict(np.load(inputs_path))
        answer = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        for name, value in answer.items():
            value = value.numpy()
            outputs[f"{key}/{signature}/{name}"] = value.astype("S") if value.dtype == object else value
    warmup = os.path.join(entry["path"], "assets.extra", "tf_serving_warmup_requests")
    replayed = []
    for raw in tf.data.TFRecordDataset(warmup).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
        signature = request.model_spec.signature_name
        feeds = {**defaults[signature], **{k: tf.make_ndarray(p) for k, p in request.inputs.items()}}
        loaded.signatures[signature](**{k: tf.constant(v) for k, v in feeds.items()})
        replayed.append(signature)
    outputs[f"{key}/warmup"] = np.asarray(replayed, dtype="S")
assert "tfrecs" not in sys.modules, "the server process imported tfrecs"
np.savez(sys.argv[2], **outputs)
"""


def _ok(value):
    """A fixture entry, or the error that entry raised (so one broken model fails only its tests)."""
    if isinstance(value, BaseException):
        raise value
    return value


@pytest.fixture(scope="module")
def trained():
    results = {}
    for name, hparams in TINY.items():
        try:
            results[name] = train(TrainConfig(model=name, epochs=1, verbose=0, hparams=dict(hparams)))
        except Exception as error:  # noqa: BLE001 - reported by that model's tests
            results[name] = error
    return results


def _artifacts(results, name):
    """The artifacts the recipe of ``name`` handed back (every recipe hands some)."""
    result = _ok(results[name])
    assert result.artifacts is not None, f"the {name} recipe hands no export artifacts"
    return result.artifacts


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("saved_models"))
    made = {}
    plans = [(name, name, None) for name in RETRIEVERS + ("neumf",) + RANKERS] + [
        (f"{a}_then_{b}", a, b) for a, b in TWO_STAGE
    ]
    for key, name, rerank in plans:
        try:
            made[key] = export_trained(
                _ok(trained[name]),
                root,
                key,
                index="scann" if key in SCANN else "brute_force",
                k=K,
                rerank=None if rerank is None else _ok(trained[rerank]),
                num_candidates=20,
            )
        except Exception as error:  # noqa: BLE001 - reported by that export's tests
            made[key] = error
    return made


def _as_input(value, dtype: str) -> np.ndarray:
    value = np.asarray(value)
    if dtype == "string":
        return np.asarray(
            [v.decode() if isinstance(v, bytes) else str(v) for v in value.reshape(-1)], dtype="S"
        ).reshape(value.shape)
    return value.astype(tf.as_dtype(dtype).as_numpy_dtype)


def user_request(artifacts, info):
    """User 196's request to a retrieval / scoring / two-stage export and the ids it excludes."""
    query, seen = user_query(artifacts, USER)
    history = query.get("history")
    if history is not None:  # a sequential query also holds the validation item: exclude what is sent
        history = np.asarray(history).astype(str)
        seen = np.union1d(np.asarray(seen).astype(str), history[history != ""])
    inputs = {}
    for name, spec in info["inputs"].items():
        value = seen if name == "exclude_item_ids" else query[name]
        inputs[name] = _as_input(np.asarray(value)[np.newaxis], spec["dtype"])
    return inputs, set(np.asarray(seen).astype(str))


def ranking_request(artifacts: RankingArtifacts, info, rows: int = 3):
    """Three training rows of user 196 (DIN: with the user's training items as its history)."""
    from tfrecs.data import joined_columns
    from tfrecs.data.histories import user_histories

    train_part = artifacts.split.train
    columns = joined_columns(train_part)
    mine = np.flatnonzero(np.asarray(columns["user_id"]).astype(str) == USER)[:rows]
    inputs = {}
    for name, spec in info["inputs"].items():
        if name == "history":
            row = int(train_part.user_index.lookup(np.asarray([USER]).astype(train_part.user_index.ids.dtype))[0])
            value = np.repeat(user_histories(train_part, spec["shape"][1])[row : row + 1], rows, axis=0)
        elif len(spec["shape"]) == 2:  # a list column such as genres, padded
            value = np.asarray(columns[name], dtype=object)[mine]
            width = spec["shape"][1] if spec["shape"][1] > 0 else max(len(v) for v in value)
            value = dense_column(value, tf.TensorSpec([None, width], tf.as_dtype(spec["dtype"])))
        else:
            value = np.asarray(columns[name])[mine]
        inputs[name] = _as_input(value, spec["dtype"])
    return inputs


@pytest.fixture(scope="module")
def served(trained, exports, tmp_path_factory):
    """Every export answered by one fresh process: ``{export: {signature/output: value}}`` plus requests."""
    directory = tmp_path_factory.mktemp("served")
    plan, requests = {}, {}
    for key, export in exports.items():
        if isinstance(export, BaseException):
            continue
        name = key.split("_then_")[0]
        artifacts = _artifacts(trained, name)
        if export.kind == "ranking":
            asked = {"serving_default": ranking_request(artifacts, export.info)}
        else:
            inputs, seen = user_request(artifacts, export.info)
            asked = {"serving_default": inputs}
            if export.kind == "candidate_scoring":
                catalogue = np.asarray(artifacts.candidates["item_id"]).astype(str)
                listed = [sorted(seen)[0], catalogue[0], catalogue[7], "not-an-item"]
                user = {k: v for k, v in inputs.items() if k != "exclude_item_ids"}
                asked["score_candidates"] = {**user, "candidate_item_ids": np.asarray([listed], dtype="S")}
            requests[key + "/seen"] = seen
        requests[key] = asked
        paths = {}
        for signature, inputs in asked.items():
            paths[signature] = str(directory / f"{key}-{signature}.npz")
            np.savez(paths[signature], **inputs)
        plan[key] = {"path": export.path, "requests": paths}
    with open(directory / "plan.json", "w") as handle:
        json.dump(plan, handle)
    (directory / "worker.py").write_text(WORKER)
    process = subprocess.run(
        [sys.executable, str(directory / "worker.py"), str(directory / "plan.json"), str(directory / "out.npz")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    answers = {key: {} for key in plan}
    with np.load(directory / "out.npz") as outputs:
        for name in outputs.files:
            key, rest = name.split("/", 1)
            answers[key][rest] = outputs[name]
    return answers, requests


def test_every_trainable_model_is_covered():
    assert set(recipe_names()) == set(TINY), "a new recipe needs its tiny settings here (and an export)"


def _answer(served, key):
    answers, requests = served
    assert key in answers, f"{key} was not exported"
    return answers[key], requests[key], requests.get(key + "/seen")


def _check_top_k(answer, seen, catalogue, prefix="serving_default"):
    ids = answer[f"{prefix}/item_ids"].astype(str)
    scores = answer[f"{prefix}/scores"]
    assert ids.shape == (1, K) and scores.shape == (1, K) and scores.dtype == np.float32
    assert set(ids[0]) <= set(catalogue) and len(set(ids[0])) == K
    assert not set(ids[0]) & seen, "an excluded item came back"
    assert np.all(np.isfinite(scores)) and np.all(np.diff(scores[0]) <= 1e-6)
    return ids[0], scores[0]


@pytest.mark.parametrize("name", RETRIEVERS + ("neumf",))
def test_retrieval_and_scoring_exports_answer_a_known_user_in_raw_ids(trained, exports, served, name):
    export = _ok(exports[name])
    answer, asked, seen = _answer(served, name)
    artifacts = _artifacts(trained, name)
    catalogue = np.asarray(artifacts.candidates["item_id"]).astype(str)
    ids, scores = _check_top_k(answer, seen, catalogue)
    model = _ok(trained[name]).model
    query = {k: tf.constant(v.astype(str) if v.dtype.kind == "S" else v) for k, v in asked["serving_default"].items()}
    excluded = [sorted(seen)]
    if name == "neumf":  # every catalogue item scored by the network, exclusions masked
        logits = model.score_candidates(query["user_id"], tf.constant(catalogue)).numpy()[0]
        expected = np.sort(logits[~np.isin(catalogue, list(seen))])[::-1][:K]
        np.testing.assert_allclose(answer["serving_default/probabilities"][0], 1 / (1 + np.exp(-scores)), rtol=1e-5)
        assert export.kind == "candidate_scoring"
    elif name != "two_tower":  # brute force: the in-memory model's exact top-k
        features = {k: v for k, v in query.items() if k != "exclude_item_ids"}
        expected = model.recommend(features, k=K, exclude=excluded)[1].numpy()[0]
    else:
        assert export.info["index"]["kind"] == "scann"
        expected = scores
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    assert "titles" in export.info["outputs"] and answer["serving_default/titles"].shape == (1, K)


def test_neumf_scores_a_given_candidate_list_as_the_in_memory_model(trained, served):
    answer, asked, _ = _answer(served, "neumf")
    request = asked["score_candidates"]
    listed = request["candidate_item_ids"][0].astype(str)
    model = _ok(trained["neumf"]).model
    pairs = {
        "user_id": tf.constant([USER] * len(listed)),
        "item_id": tf.constant(listed),
    }
    expected = model(pairs).numpy().reshape(1, -1)
    np.testing.assert_allclose(answer["score_candidates/scores"], expected, rtol=1e-5, atol=1e-6)
    probabilities = answer["score_candidates/probabilities"]
    assert probabilities.shape == (1, 4) and np.all((probabilities > 0) & (probabilities < 1))
    assert sorted(set(answer["warmup"].astype(str))) == ["score_candidates", "serving_default"]


@pytest.mark.parametrize("name", RANKERS)
def test_ranking_exports_serve_probabilities_of_the_in_memory_model(trained, exports, served, name):
    export = _ok(exports[name])
    answer, asked, _ = _answer(served, name)
    model = _ok(trained[name]).model
    inputs = {k: tf.constant(v.astype(str) if v.dtype.kind == "S" else v) for k, v in asked["serving_default"].items()}
    expected = {key: value.numpy() for key, value in ranking_outputs(model, inputs, task_kinds(model)).items()}
    outputs = {key.split("/", 1)[1]: value for key, value in answer.items() if key.startswith("serving_default/")}
    assert set(outputs) == set(expected) == set(export.info["outputs"].values())
    if name in ("mmoe", "shared_bottom"):
        assert set(outputs) == {"like_probability", "rating_score"}  # one output per task
    for key, value in outputs.items():
        assert value.shape == (3,) and value.dtype == np.float32
        np.testing.assert_allclose(value, expected[key], rtol=1e-4, atol=1e-5)
        if key.endswith("probability"):
            assert np.all((value >= 0) & (value <= 1))
    if name == "din":
        assert export.info["inputs"]["history"] == {"dtype": "string", "shape": [-1, 10]}


@pytest.mark.parametrize("retriever, ranker", TWO_STAGE)
def test_two_stage_exports_serve_any_ranker_behind_any_retriever(trained, exports, served, retriever, ranker):
    key = f"{retriever}_then_{ranker}"
    export = _ok(exports[key])
    answer, _, seen = _answer(served, key)
    catalogue = np.asarray(_artifacts(trained, retriever).candidates["item_id"]).astype(str)
    _, scores = _check_top_k(answer, seen, catalogue)
    assert export.kind == "two_stage" and answer["serving_default/retrieval_scores"].shape == (1, K)
    if ranker in ("din", "mmoe", "deepfm"):  # a probability
        assert np.all((scores >= 0) & (scores <= 1))
    if (retriever, ranker) == ("sasrec", "din"):  # SASRec's 20 left-padded items, DIN's 10
        assert export.info["rewindowed_for_ranking"] == {"history": 10}
    if (retriever, ranker) == ("ease", "deepfm"):  # genres come from the item table, not the request
        assert "genres" in export.info["item_side_features"] and "genres" not in export.info["inputs"]


@pytest.mark.parametrize("key", EXPORTS)
def test_export_info_records_the_run_and_the_package_versions(trained, exports, key):
    export = _ok(exports[key])
    with open(os.path.join(export.path, "assets", "export_info.json")) as handle:
        info = json.load(handle)
    assert {"tensorflow", "tf-keras", "tensorflow-recommenders", "scann", "numpy", "tfrecs"} <= set(info["versions"])
    training = info["training"]
    assert training["dataset"] == "ml-100k" and training["seed"] == 2020
    assert training["model"] == key.split("_then_")[0] and "figures" in training
    if "_then_" in key:
        assert info["rerank_training"]["model"] == key.split("_then_")[1]


def test_warmup_records_replay_against_their_signatures(served):
    answers, _ = served
    for key, answer in answers.items():
        assert len(answer["warmup"]) >= 2, key


@pytest.mark.parametrize("key", ("sasrec", "ease", "neumf", "lightgcn", "two_tower_then_din"))
def test_show_user_prints_a_users_top_k_from_the_reloaded_export(trained, exports, capsys, key):
    export = _ok(exports[key])
    artifacts = _artifacts(trained, key.split("_then_")[0])
    _show_user(export.path, artifacts, USER)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()[:3].strip(". ").isdigit()]
    assert f"top recommendations for user {USER}" in out and len(lines) == K
    _, seen = user_query(artifacts, USER)
    shown = {line.split("(item ")[1].split(",")[0] for line in lines}
    assert not shown & set(np.asarray(seen).astype(str))


def test_show_user_on_a_ranking_export_says_what_to_do(trained, exports):
    with pytest.raises(ValueError, match="put it behind a retriever"):
        _show_user(_ok(exports["din"]).path, _artifacts(trained, "din"), USER)


def test_cli_exports_neumf_and_shows_a_user(trained, tmp_path, capsys):
    """NeuMF used to export as a ranking model only ("no query tower" as a retriever)."""
    from tfrecs.cli import main

    with pytest.raises(ValueError, match="do not apply"):
        export_trained(_ok(trained["neumf"]), str(tmp_path), "refused", scann_params={"num_leaves": 3})
    argv = ["export", "--model", "neumf", "--epochs", "1", "--k", "3", "--export-root", str(tmp_path)]
    for key, value in TINY["neumf"].items():
        argv += ["--set", f"{key}={','.join(map(str, value)) if isinstance(value, tuple) else value}"]
    assert main(argv + ["--show-user", USER, "--verbose", "0", "--no-warmup"]) == 0
    out = capsys.readouterr().out
    assert "exported candidate_scoring model 'neumf'" in out
    assert len([line for line in out.splitlines() if line.strip()[:3].strip(". ").isdigit()]) == 3


def test_rewindow_keeps_each_rows_most_recent_items_at_the_rankers_width():
    from tfrecs.export.two_stage import rewindow

    strings = tf.constant([["a", "b", "c", ""], ["", "", "x", "y"], ["", "", "", ""]])
    assert rewindow(strings, 2).numpy().astype(str).tolist() == [["b", "c"], ["x", "y"], ["", ""]]
    assert rewindow(strings, 3).numpy().astype(str).tolist() == [["a", "b", "c"], ["x", "y", ""], ["", "", ""]]
    ints = tf.constant([[-1, -1, 0, 7]], tf.int64)  # item 0 is a real id; -1 pads
    assert rewindow(ints, 3).numpy().tolist() == [[0, 7, -1]]


def test_neumf_exclusions_that_exhaust_the_catalogue_pad_the_answer(trained, exports):
    module = _ok(exports["neumf"]).module
    catalogue = np.asarray(_artifacts(trained, "neumf").candidates["item_id"]).astype(str)
    answer = module.serving_default({"user_id": tf.constant([USER])}, tf.constant([catalogue[2:]]))
    ids = answer["item_ids"].numpy().astype(str)[0]
    assert sorted(ids[:2]) == sorted(catalogue[:2]) and list(ids[2:]) == [""] * (K - 2)
    assert np.all(answer["probabilities"].numpy()[0, 2:] == 0)
