"""One workflow per family on a CSV written here: ``tfrecs train --data ... --run-dir R`` ->
``tfrecs evaluate --run-dir R`` (the training figures again) -> ``tfrecs export --run-dir R``
(no fitting: ``fit`` is made to fail and the run directory stays untouched) -> the export
reloaded in a fresh process with only TensorFlow and ScaNN answers a known user in raw ids."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from factories.own_data import CLI_OPTIONS, own_frame

import tfrecs  # noqa: F401
from tfrecs import training
from tfrecs.cli import main
from tfrecs.export.preview import top_k_from_export, user_query
from tfrecs.recipes import train
from tfrecs.recipes.run_dir import config_from_run

WORKER = os.path.join(os.path.dirname(__file__), "workers", "load_export_signature.py")
USER = "u7"
FAMILIES = {  # tiny settings: the workflow is under test, not the quality
    "two_tower": ["--set", "embedding_dim=16", "--set", "query_units=32", "--set", "candidate_units=32"],
    "sasrec": ["--set", "dim=16", "--set", "max_len=20"],
    "deepfm": ["--set", "embedding_dim=4", "--set", "hidden_units=16"],
    "lightgcn": ["--set", "embedding_dim=16"],
    "mmoe": ["--set", "embedding_dim=4", "--set", "expert_units=16", "--set", "tower_units=8"],
}
RETRIEVAL = ("two_tower", "sasrec", "lightgcn")
RANKING = ("deepfm", "mmoe")
RESULT_KEYS = ("auc", "logloss", "gauc", "rmse", "hr@10", "ndcg@10", "recall@10", "mrr@10", "epochs", "best_epoch")


def json_line(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def snapshot(directory) -> dict:
    """Every file under ``directory`` with its size and modification time."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, directory)] = (os.path.getsize(path), os.stat(path).st_mtime_ns)
    return found


def refuse_to_fit(*args, **kwargs):
    raise AssertionError("evaluate / export --run-dir must not fit")


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """Runs the workflow of every family; returns what each step printed and left behind."""
    root = tmp_path_factory.mktemp("workflow")
    csv = root / "mydata.csv"
    own_frame(num_users=80, num_items=50, per_user=20).to_csv(csv, index=False)
    patch = pytest.MonkeyPatch()
    runs = {}
    for model, settings in FAMILIES.items():
        run_dir, export_root = str(root / f"run_{model}"), str(root / "exports")
        capture = CaptureStdout()
        with capture:
            status = main(
                ["train", "--model", model, "--data", str(csv), *CLI_OPTIONS, "--epochs", "2", "--verbose", "0"]
                + settings
                + ["--run-dir", run_dir]
            )
        assert status == 0, capture.text
        trained, before = json_line(capture.text), snapshot(run_dir)
        patch.setattr(training, "fit", refuse_to_fit)
        patch.setattr(tf_keras.Model, "fit", refuse_to_fit)
        try:
            with capture:
                assert main(["evaluate", "--run-dir", run_dir]) == 0, capture.text
            evaluated = json_line(capture.text)
            with capture:
                assert (
                    main(["export", "--run-dir", run_dir, "--export-root", export_root, "--index", "brute_force"]) == 0
                )
            exported = json_line(capture.text)
        finally:
            patch.undo()
        runs[model] = dict(
            run_dir=run_dir,
            trained=trained,
            evaluated=evaluated,
            exported=exported,
            unchanged=before == snapshot(run_dir),
        )
    return root, runs


class CaptureStdout:
    """``with capture:`` collects what ``print`` writes (``capsys`` is function-scoped)."""

    def __enter__(self):
        import io

        self._old, self._buffer = sys.stdout, io.StringIO()
        sys.stdout = self._buffer
        return self

    def __exit__(self, *exc):
        sys.stdout = self._old
        self.text = self._buffer.getvalue()


@pytest.mark.parametrize("model", list(FAMILIES))
def test_evaluate_and_export_use_the_trained_model_without_fitting(workflow, model):
    _, runs = workflow
    run = runs[model]
    for key in RESULT_KEYS:
        if key in run["trained"]:
            assert run["evaluated"][key] == run["trained"][key], key
            assert run["exported"][key] == run["trained"][key], key
    assert run["unchanged"], "evaluate / export wrote into the run directory"
    record = json.load(open(os.path.join(run["run_dir"], "run.json")))
    assert record["model"] == model and record["dataset"] == "mydata" and record["seed"] == 2020
    assert record["config"]["data"]["user"] == "user" and os.path.isabs(record["config"]["data"]["path"])
    assert record["training_settings"]["epochs"] == 2
    assert record["model_hyperparameters"], "the resolved hyper-parameters are recorded"
    assert len(record["history"]["loss"]) == record["figures"]["epochs"] == 2
    info = json.load(open(os.path.join(run["exported"]["export_path"], "assets", "export_info.json")))
    assert info["training"]["model"] == model and info["training"]["figures"]["epochs"] == 2
    assert info["training"]["evaluated_from"] == run["run_dir"] and info["versions"]["tensorflow"].startswith("2.20")


def test_the_run_directory_holds_a_plain_keras_model(workflow):
    _, runs = workflow
    run_dir = runs["deepfm"]["run_dir"]
    reloaded = tf_keras.models.load_model(os.path.join(run_dir, "model.keras"))
    restored = train(config_from_run(run_dir, verbose=0))
    assert type(reloaded) is type(restored.model)
    for left, right in zip(reloaded.get_weights(), restored.model.get_weights()):
        np.testing.assert_array_equal(left, right)


def test_exports_answer_a_known_user_in_raw_ids_in_a_fresh_process(workflow, tmp_path):
    root, runs = workflow
    pairs, expected = [], {}
    for model in RETRIEVAL:
        restored = train(config_from_run(runs[model]["run_dir"], verbose=0))
        query, seen = user_query(restored.artifacts, USER)
        path = runs[model]["exported"]["export_path"]
        signature = tf.saved_model.load(path).signatures["serving_default"]
        names = signature.structured_input_signature[1]
        inputs = {name: np.asarray(query[name])[np.newaxis] for name in names if name != "exclude_item_ids"}
        inputs["exclude_item_ids"] = np.asarray(seen).astype(str)[np.newaxis]
        np.savez(
            tmp_path / f"{model}.npz", **{k: v.astype("S") if v.dtype.kind in "OU" else v for k, v in inputs.items()}
        )
        pairs += [str(tmp_path / f"{model}.npz"), path]
        expected[model] = ([row["item_id"] for row in top_k_from_export(path, query, exclude_item_ids=seen)], seen)
    outputs = tmp_path / "outputs.npz"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    subprocess.run([sys.executable, WORKER, str(outputs), *pairs], check=True, env=env, timeout=300)
    answers = np.load(outputs)
    catalogue = {f"m{i:03d}" for i in range(50)}
    for position, model in enumerate(RETRIEVAL):
        for loader in ("tf2", "tf1"):
            ids = [value.decode() for value in answers[f"{position}/{loader}/item_ids"][0]]
            assert len(ids) == 10 and set(ids) <= catalogue, (model, ids)
            assert not set(ids) & set(expected[model][1]), f"{model} answered an excluded item"
            assert ids == expected[model][0], model


def ranking_request(frame, signature, user: str, count: int = 3) -> dict:
    """``count`` (user, item) rows of ``user`` from the CSV's table, shaped as ``signature`` takes them."""
    rows = frame[frame.user == user].head(count)
    columns = {"user_id": rows.user, "item_id": rows.movie, "age": rows.age, "country": rows.country}
    inputs = {}
    for name, spec in signature.structured_input_signature[1].items():
        if name == "genres":
            width = spec.shape[1]
            lists = [(genres.split("|") + [""] * width)[:width] for genres in rows.genres]
            inputs[name] = np.asarray(lists, dtype="S")
        else:
            inputs[name] = np.asarray(columns[name]).astype(
                "S" if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
            )
    return inputs


def test_ranking_exports_score_a_known_user_in_a_fresh_process(workflow, tmp_path):
    root, runs = workflow
    frame = own_frame(num_users=80, num_items=50, per_user=20)
    pairs, expected = [], {}
    for model in RANKING:
        path = runs[model]["exported"]["export_path"]
        signature = tf.saved_model.load(path).signatures["serving_default"]
        inputs = ranking_request(frame, signature, USER)
        np.savez(tmp_path / f"{model}.npz", **inputs)
        pairs += [str(tmp_path / f"{model}.npz"), path]
        restored = train(config_from_run(runs[model]["run_dir"], verbose=0)).model
        features = {
            name: tf.constant(value.astype(str) if value.dtype.kind == "S" else value) for name, value in inputs.items()
        }
        predicted = restored.predict(features, verbose=0)
        expected[model] = predicted if isinstance(predicted, dict) else {"like": predicted}
    outputs = tmp_path / "outputs.npz"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    subprocess.run([sys.executable, WORKER, str(outputs), *pairs], check=True, env=env, timeout=300)
    answers = np.load(outputs)
    for position, model in enumerate(RANKING):
        served = {name.split("/")[-1]: answers[name] for name in answers.files if name.startswith(f"{position}/tf2/")}
        if model == "mmoe":
            assert set(served) == {"like_probability", "rating_score"}, sorted(served)
        probabilities = served.get("like_probability", served.get("probability"))
        assert probabilities is not None, sorted(served)
        assert probabilities.shape == (3,) and np.all((probabilities >= 0) & (probabilities <= 1))
        np.testing.assert_allclose(probabilities, np.reshape(expected[model]["like"], -1), rtol=1e-5, atol=1e-6)
        tf1 = answers[f"{position}/tf1/{'like_probability' if 'like_probability' in served else 'probability'}"]
        np.testing.assert_allclose(tf1, probabilities, rtol=1e-6)


def test_evaluate_measures_another_protocol_or_part_of_the_same_split(workflow, capsys):
    _, runs = workflow
    run_dir = runs["two_tower"]["run_dir"]
    assert main(["evaluate", "--run-dir", run_dir, "--split", "valid", "--k", "10"]) == 0
    valid = json_line(capsys.readouterr().out)
    record = json.load(open(os.path.join(run_dir, "run.json")))
    # the restored weights are the best epoch's: its validation NDCG@10 is the best the callback saw
    assert valid["split"] == "valid" and valid["ndcg@10"] == pytest.approx(max(record["history"]["val_ndcg@10"]))
    assert main(["evaluate", "--run-dir", run_dir, "--protocol", "random-sampled", "--negatives", "20"]) == 0
    sampled = json_line(capsys.readouterr().out)
    assert sampled["protocol"] == "random-sampled" and 0 < sampled["hr@10"] <= 1
    assert sampled["ndcg@10"] != runs["two_tower"]["trained"]["ndcg@10"]


@pytest.mark.parametrize(
    "model, argv, message",
    [
        ("two_tower", ["evaluate", "--protocol", "loo-full"], "trained on the 'random' split"),
        ("deepfm", ["evaluate", "--protocol", "random-full"], "deepfm is a ranking model"),
        ("deepfm", ["evaluate", "--model", "sasrec"], "holds a deepfm run, not --model sasrec"),
        ("deepfm", ["evaluate", "--seed", "3"], "drop --seed"),
        ("deepfm", ["export", "--epochs", "3"], "drop --epochs"),
        ("deepfm", ["train", "--model", "deepfm"], "already holds a finished run"),
    ],
)
def test_run_dir_misuse_is_one_line_naming_the_option(workflow, capsys, model, argv, message):
    _, runs = workflow
    assert main([*argv, "--run-dir", runs[model]["run_dir"]]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error


def test_a_run_dir_without_a_finished_run_is_refused(tmp_path, capsys):
    (tmp_path / "backup").mkdir()
    assert main(["evaluate", "--run-dir", str(tmp_path)]) == 2
    assert "an unfinished run" in capsys.readouterr().err
    assert main(["export", "--run-dir", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
