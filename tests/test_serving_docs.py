"""docs/serving.md's request examples work against real exports of every kind the page shows.

One module fixture trains the page's recipes (two_tower, deepfm, mmoe; one epoch) on a small
part of ML-100K (the first users' ratings, every user and item feature, so the signatures are
those of the full data) and writes the page's four exports with the generator's own
``build_exports`` into ``<tmp>/saved_models``. Then, for each export, every rendering of
``tfrecs.export.request_examples`` AND the page's own snippets are sent:

* the REST body (parsed from the curl here-document, decoded to tensors by the signature's
  dtypes) and the gRPC ``PredictRequest`` (built by executing the snippet against a stub whose
  ``Predict`` answers through the TF1 session; its tensors read back with ``tf.make_ndarray``)
  through ``tf.saved_model.load`` and through the TF1 session loader;
* the TF2 and TF1 Python snippets, executed as written (relative ``saved_models/...`` paths) in
  one fresh subprocess that imports only TensorFlow and ScaNN.

Every answer must have the documented outputs, dtypes and shapes, and the loaders must agree
(same ids, same scores). The page's generated sections must match what the generator renders
for these exports (names, dtypes, shapes, the inputs each rendering sends).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.data.movielens import fetch_ml100k
from tfrecs.export import read_warmup, request_examples

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, "docs", "serving.md")
USERS = 40  # ML-100K users whose ratings train the exports (about 4,000 rows)
KINDS = ("two_tower", "deepfm", "two_tower_then_deepfm", "mmoe")
SCANN = {"two_tower": True, "deepfm": False, "two_tower_then_deepfm": True, "mmoe": False}

RUNNER = r"""
import json, os, sys
import numpy as np

snippets = json.load(open(sys.argv[1]))
results = {}
for key, code in snippets.items():
    namespace = {}
    exec(compile(code, key, "exec"), namespace)
    for name, value in namespace["outputs"].items():
        value = np.asarray(value)
        results[f"{key}/{name}"] = value.astype("S") if value.dtype == object else value
imported = sorted({name.split(".")[0] for name in sys.modules})
assert "tfrecs" not in imported, "a snippet imported tfrecs"
np.savez(sys.argv[2], **results)
print(json.dumps({"tensorflow": "tensorflow" in imported, "scann": "scann" in imported}))
"""


def _generator():
    path = os.path.join(REPO, "docs", "generate_serving_examples.py")
    spec = importlib.util.spec_from_file_location("generate_serving_examples", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _ml100k_part(directory: str) -> str:
    """RecBole files of ML-100K with the ratings of users 1..USERS (all users and items kept)."""
    source = fetch_ml100k()
    os.makedirs(directory)
    with open(os.path.join(source, "ml-100k.inter"), encoding="utf-8") as full:
        with open(os.path.join(directory, "ml-100k.inter"), "w", encoding="utf-8") as part:
            part.write(full.readline())
            part.writelines(line for line in full if int(line.split("\t", 1)[0]) <= USERS)
    for table in ("user", "item"):
        shutil.copy(os.path.join(source, f"ml-100k.{table}"), directory)
    return directory


class Loaded:
    """One export loaded both ways: ``tf.saved_model.load`` and a TF1 session."""

    def __init__(self, path: str):
        import scann  # noqa: F401  - registers the ScaNN ops

        self.module = tf.saved_model.load(path)
        self.signature = self.module.signatures["serving_default"]
        self.session = tf.compat.v1.Session(graph=tf.Graph())
        meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        self.signature_def = meta_graph.signature_def["serving_default"]

    def tf2(self, inputs):
        tensors = {name: tf.constant(value) for name, value in inputs.items()}
        return {name: value.numpy() for name, value in self.signature(**tensors).items()}

    def tf1(self, inputs):
        feed = {self.signature_def.inputs[name].name: value for name, value in inputs.items()}
        fetches = {name: info.name for name, info in self.signature_def.outputs.items()}
        return self.session.run(fetches, feed)


def decode_rest(body, examples):
    """A REST body as the server reads it: JSON values -> arrays of the signature's dtypes."""
    dtypes = {info.name: info.dtype for info in examples.inputs}
    if "inputs" in body:
        columns = body["inputs"]
    else:
        columns = {name: [row[name] for row in body["instances"]] for name in body["instances"][0]}
    decoded = {}
    for name, values in columns.items():
        if dtypes[name] == "string":
            array = np.asarray(values, dtype=object)
            decoded[name] = np.asarray([v.encode() for v in array.reshape(-1)], dtype=object).reshape(array.shape)
        else:
            decoded[name] = np.asarray(values, dtype=tf.as_dtype(dtypes[name]).as_numpy_dtype)
    return decoded


def run_grpc(code, loaded, monkeypatch):
    """Executes a gRPC snippet against a stub that answers through the TF1 session; (outputs, request)."""
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    sent = {}

    class Stub:
        def __init__(self, channel):
            sent["channel"] = channel

        def Predict(self, request, timeout=None):  # noqa: N802  - the gRPC method name
            sent["request"] = request
            inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            for name, value in loaded.tf1(inputs).items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response

    monkeypatch.setattr(grpc, "insecure_channel", lambda target: target)
    monkeypatch.setattr(prediction_service_pb2_grpc, "PredictionServiceStub", Stub)
    namespace = {}
    exec(compile(code, "<grpc snippet>", "exec"), namespace)
    return namespace["outputs"], sent


@pytest.fixture(scope="module")
def generator():
    return _generator()


def _start_snippets(base: str, snippets) -> subprocess.Popen:
    """Starts ONE fresh process running every snippet (cwd ``base``: they load saved_models/<name>/1)."""
    with open(os.path.join(base, "snippets.json"), "w", encoding="utf-8") as handle:
        json.dump(snippets, handle)
    with open(os.path.join(base, "runner.py"), "w", encoding="utf-8") as handle:
        handle.write(RUNNER)
    # a client's environment: not tfrecs' TF_USE_LEGACY_KERAS (inherited from this process)
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    command = [sys.executable, "runner.py", "snippets.json", "answers.npz"]
    return subprocess.Popen(command, cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _snippet_answers(base: str, process: subprocess.Popen):
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    assert json.loads(stdout.strip().splitlines()[-1]) == {"tensorflow": True, "scann": True}
    answers = {}
    with np.load(os.path.join(base, "answers.npz")) as stored:
        for key in stored.files:
            run, output = key.rsplit("/", 1)
            value = stored[key]
            answers.setdefault(run, {})[output] = value.astype(object) if value.dtype.kind == "S" else value
    return answers


@pytest.fixture(scope="module")
def served(tmp_path_factory, generator):
    """Exports, their request examples (as the page renders them), both loaders, and the answers of
    every TF2 / TF1 snippet (fresh renderings and the page's own) run in one fresh process."""
    base = str(tmp_path_factory.mktemp("serving_docs"))
    data = _ml100k_part(os.path.join(base, "ml-100k"))
    paths = generator.build_exports(os.path.join(base, "saved_models"), epochs=1, data_dir=data)
    assert sorted(paths) == sorted(KINDS)
    with open(DOC, encoding="utf-8") as handle:
        doc = generator.read_sections(handle.read())
    kinds, snippets = {}, {}
    for name, path in paths.items():
        assert path == os.path.join(base, "saved_models", name, "1")
        examples = generator.example_for(path, name)
        kinds[name] = {"path": path, "examples": examples, "doc": doc.get(name)}
        snippets[f"{name}/tf2"], snippets[f"{name}/tf1"] = examples.python_tf2(), examples.python_tf1()
        if name in doc:
            blocks = generator.code_blocks(doc[name])
            snippets[f"{name}/doc_tf2"], snippets[f"{name}/doc_tf1"] = blocks["tf2"], blocks["tf1"]
    process = _start_snippets(base, snippets)
    try:
        for kind in kinds.values():  # while the fresh process runs
            kind["loaded"] = Loaded(kind["path"])
        answers = _snippet_answers(base, process)
    finally:
        if process.poll() is None:
            process.kill()
    return {"base": base, "kinds": kinds, "snippets": answers}


@pytest.fixture(scope="module")
def snippet_answers(served):
    return served["snippets"]


def _check_answer(answer, examples, where):
    """Documented outputs with their dtypes and shapes; probabilities in [0, 1]."""
    shapes = examples.answer_shapes()
    assert sorted(answer) == sorted(shapes), where
    for name, (dtype, shape) in shapes.items():
        value = np.asarray(answer[name])
        assert value.shape == shape, (where, name, value.shape, shape)
        if dtype == "string":
            assert value.dtype == object and all(isinstance(v, bytes) for v in value.reshape(-1)), (where, name)
        else:
            assert value.dtype == np.dtype(dtype), (where, name, value.dtype)
        if name.endswith("probability"):
            assert np.all((value >= 0) & (value <= 1)), (where, name)


def _same(answers, where):
    """Every answer equals the first: identical ids / strings, scores within float32 noise."""
    (first_label, first), *others = answers.items()
    for label, answer in others:
        for name, value in first.items():
            other = np.asarray(answer[name])
            if np.asarray(value).dtype == object:
                assert other.tolist() == np.asarray(value).tolist(), (where, first_label, label, name)
            else:
                np.testing.assert_allclose(other, value, rtol=1e-5, atol=1e-5, err_msg=f"{where}: {label} {name}")


@pytest.mark.parametrize("name", KINDS)
def test_every_rendering_answers_the_documented_shape_and_both_loaders_agree(
    name, served, snippet_answers, generator, monkeypatch
):
    kind = served["kinds"][name]
    examples, loaded = kind["examples"], kind["loaded"]
    assert examples.needs_scann is SCANN[name]
    assert ("import scann" in examples.python_tf2()) is SCANN[name]

    rest = generator.rest_request(examples.curl())
    assert rest["url"] == f"http://localhost:8501/v1/models/{name}:predict"
    assert rest["body"]["signature_name"] == "serving_default"
    assert list(rest["body"]["inputs"]) == [info.name for info in examples.inputs]
    rest_inputs = decode_rest(rest["body"], examples)
    grpc_outputs, sent = run_grpc(examples.grpc_python(), loaded, monkeypatch)
    assert sent["channel"] == "localhost:8500"
    assert sent["request"].model_spec.name == name
    grpc_inputs = {key: tf.make_ndarray(proto) for key, proto in sent["request"].inputs.items()}
    assert sorted(grpc_inputs) == sorted(rest_inputs)
    for key, value in rest_inputs.items():  # the two renderings send the same tensors
        assert grpc_inputs[key].dtype == value.dtype and grpc_inputs[key].tolist() == value.tolist(), key

    answers = {
        "rest/tf2": loaded.tf2(rest_inputs),
        "rest/tf1": loaded.tf1(rest_inputs),
        "grpc/tf2": loaded.tf2(grpc_inputs),
        "grpc/stub(tf1)": grpc_outputs,
        "python/tf2": snippet_answers[f"{name}/tf2"],
        "python/tf1": snippet_answers[f"{name}/tf1"],
    }
    for label, answer in answers.items():
        _check_answer(answer, examples, f"{name} {label}")
    _same(answers, name)


@pytest.mark.parametrize("name", KINDS)
def test_the_pages_own_examples_run_against_a_fresh_export(name, served, snippet_answers, generator, monkeypatch):
    kind = served["kinds"][name]
    assert kind["doc"] is not None, f"docs/serving.md has no generated section for {name}"
    examples, loaded = kind["examples"], kind["loaded"]
    blocks = generator.code_blocks(kind["doc"])
    rest_inputs = decode_rest(generator.rest_request(blocks["curl"])["body"], examples)
    grpc_outputs, _ = run_grpc(blocks["grpc"], loaded, monkeypatch)
    answers = {
        "doc rest/tf2": loaded.tf2(rest_inputs),
        "doc rest/tf1": loaded.tf1(rest_inputs),
        "doc grpc/stub(tf1)": grpc_outputs,
        "doc python/tf2": snippet_answers[f"{name}/doc_tf2"],
        "doc python/tf1": snippet_answers[f"{name}/doc_tf1"],
    }
    for label, answer in answers.items():
        _check_answer(answer, examples, f"{name} {label}")
    _same(answers, name)
    documented = json.loads(blocks["answer"])["outputs"]  # the page's answer has the same structure
    if len(examples.outputs) == 1:
        assert np.shape(documented) == examples.answer_shapes()[examples.outputs[0].name][1]
    else:
        assert {k: np.shape(v) for k, v in documented.items()} == {
            k: shape for k, (_, shape) in examples.answer_shapes().items()
        }


def test_the_pages_generated_sections_are_in_sync_with_fresh_exports(served, generator):
    with open(DOC, encoding="utf-8") as handle:
        text = handle.read()
    assert sorted(generator.read_sections(text)) == sorted(KINDS)
    sections = {}
    for example in generator.EXAMPLES:
        kind = served["kinds"][example.name]
        answer = kind["loaded"].tf2({k: v for k, v in kind["examples"].request.items()})
        sections[example.name] = generator.render_section(example, kind["examples"], answer)
    assert generator.drift(text, sections) == []
    # the page's tables are what the signature says, and each rendering sends every input
    two_tower = generator.skeleton(sections["two_tower"])
    names = ["user_id", "age", "gender", "occupation", "history", "exclude_item_ids"]
    assert [row[0] for row in two_tower["table"][: len(names)]] == names
    assert ("history", "string", "batch, 50") in two_tower["table"]
    assert two_tower["rest"] == two_tower["grpc"] == two_tower["tf2"] == two_tower["tf1"] == sorted(names)
    mmoe = generator.skeleton(sections["mmoe"])
    assert ("like_probability", "float32", "batch") in mmoe["table"]
    assert ("rating_score", "float32", "batch") in mmoe["table"]
    # a changed signature is reported, naming what changed
    drifted = {"two_tower": sections["two_tower"].replace("| `age` | int64 |", "| `age` | float32 |")}
    assert any("two_tower: table" in line for line in generator.drift(text, drifted))
    replaced = generator.replace_sections(text, sections)
    assert generator.drift(replaced, sections) == []


def test_request_examples_reads_the_signature_and_the_warmup_rows(served, tmp_path):
    two_tower = served["kinds"]["two_tower"]
    examples = two_tower["examples"]
    assert examples.source == "warmup" and examples.batch_size == 2 and examples.kind == "retrieval"
    assert examples.display_dir == "saved_models/two_tower/1" and examples.model_name == "two_tower"
    with open(os.path.join(two_tower["path"], "assets", "export_info.json"), encoding="utf-8") as handle:
        info = json.load(handle)
    assert [i.name for i in examples.inputs] == list(info["inputs"])  # training order, optional last
    exclude = examples.inputs[-1]
    assert exclude.name == "exclude_item_ids" and exclude.optional and exclude.default.shape == (1, 0)
    largest = max((inputs for _, inputs in read_warmup(two_tower["path"])), key=lambda r: len(r["user_id"]))
    for name, value in examples.request.items():
        assert value.tolist() == largest[name][:2].tolist(), name
    assert examples.answer_shapes() == {
        "item_ids": ("string", (2, 10)),
        "scores": ("float32", (2, 10)),
        "titles": ("string", (2, 10)),
    }
    with pytest.raises(ValueError, match="exclude_item_ids"):
        examples.rest_json(columnar=False)  # a [1, m] exclusion has no row form
    # a model directory means its latest version; another model name and rows
    again = request_examples(os.path.dirname(two_tower["path"]), rows=1, model_name="recs")
    assert again.export_dir == two_tower["path"] and again.batch_size == 1 and "models/recs:predict" in again.curl()
    with pytest.raises(ValueError, match="no saved_model.pb"):
        request_examples(str(tmp_path))
    with pytest.raises(ValueError, match="no signature 'predict'"):
        request_examples(two_tower["path"], signature_name="predict")


def test_ranking_rows_and_the_answer_without_the_output_name(served):
    for name in ("deepfm", "mmoe"):
        kind = served["kinds"][name]
        examples, loaded = kind["examples"], kind["loaded"]
        rows = decode_rest(json.loads(examples.rest_json(columnar=False)), examples)
        columns = decode_rest(examples.rest_body(), examples)
        assert {k: v.tolist() for k, v in rows.items()} == {k: v.tolist() for k, v in columns.items()}
        answer = loaded.tf1(rows)
        rest = json.loads(examples.rest_answer(answer))["outputs"]
        predictions = json.loads(examples.rest_answer(answer, columnar=False))["predictions"]
        if name == "deepfm":  # one output: TF Serving drops its name
            assert list(answer) == ["probability"] and np.allclose(rest, answer["probability"], atol=1e-4)
            assert np.allclose(predictions, answer["probability"], atol=1e-4)
        else:
            assert sorted(rest) == ["like_probability", "rating_score"]
            assert [sorted(row) for row in predictions] == [["like_probability", "rating_score"]] * 2


def test_an_export_without_warmup_records_gets_values_from_its_feature_spec(served, tmp_path):
    copy = tmp_path / "saved_models" / "deepfm" / "1"
    shutil.copytree(served["kinds"]["deepfm"]["path"], copy)
    shutil.rmtree(copy / "assets.extra")
    examples = request_examples(str(copy))
    assert examples.source == "feature_spec" and examples.batch_size == 2
    answer = served["kinds"]["deepfm"]["loaded"].tf2(decode_rest(examples.rest_body(), examples))
    _check_answer(answer, examples, "deepfm without warmup")
