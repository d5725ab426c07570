"""FAISS exports: the query tower as a TF Serving SavedModel, a FAISS index and the id table beside it.

A tiny trained Two-Tower is exported with ``faiss-hnsw`` and ``faiss-ivf`` (search parameters
that make both exhaustive on its 500 items). A fresh process that imports only TensorFlow,
FAISS and numpy serves both, through docs/serving.md's code without tfrecs and through the
loader file ``tfrecs/export/faiss_index.py``; both must give the model's own exact top-k
(``recommend``), with excluded ids absent and ``k`` still filled.
"""

import ast
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfrecs  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
from load_export_models import (  # noqa: E402
    NUM_ITEMS,
    TinyTwoTower,
    catalogue,
    feature_spec,
    fitted,
    interactions,
    split,
    titles,
)

import faiss  # noqa: E402  - the dev extra installs it: a missing FAISS fails here, never skips

from tfrecs.export import export_retrieval, export_trained, load_faiss_export, read_warmup, tune_faiss  # noqa: E402
from tfrecs.export.faiss_index import LOWEST_SCORE  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(REPO, "tfrecs", "export", "faiss_index.py")
WORKER = os.path.join(REPO, "tests", "workers", "load_faiss_export.py")
DOC = os.path.join(REPO, "docs", "serving.md")
K = 10
QUERY_FEATURES = ["user_id", "age"]
EXHAUSTIVE = {"faiss-hnsw": {"ef_search": NUM_ITEMS}, "faiss-ivf": {"nlist": 8, "nprobe": 8}}
NAMES = {"faiss-hnsw": "two_tower", "faiss-ivf": "two_tower_ivf"}  # the doc snippet loads two_tower


def queries():
    return {
        "user_id": np.asarray(["u1", "u7", "u33", "never-seen"]),
        "age": np.asarray([20, 41, 18, 30], dtype=np.int64),
    }


@pytest.fixture(scope="module")
def trained():
    tf.random.set_seed(7)
    rows = interactions()
    spec = feature_spec(rows)
    model = fitted(TinyTwoTower(spec), rows)
    model.index_candidates({"item_id": tf.constant(catalogue()["item_id"])})
    return model, spec, rows


def recommend(model, k=K, exclude=None):
    features = {name: tf.constant(value) for name, value in queries().items()}
    ids, scores = model.recommend(features, k=k, exclude=exclude)
    return ids.numpy().astype(str), scores.numpy()


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    model, spec, rows = trained
    base = str(tmp_path_factory.mktemp("faiss"))
    root = os.path.join(base, "saved_models")
    made = {
        kind: export_retrieval(
            model,
            catalogue(),
            root,
            NAMES[kind],
            feature_spec=spec,
            query_features=QUERY_FEATURES,
            index=kind,
            index_params=EXHAUSTIVE[kind],
            k=K,
            item_titles=titles(),
            columns=rows,
        )
        for kind in EXHAUSTIVE
    }
    return base, made


def recall(found, expected) -> float:
    """Share of the expected ids per row that were found, over all rows."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, expected)]))


def per_query_exclusions(model):
    """Each query's own best 3 ids, plus an id outside the catalogue."""
    ids, _ = recommend(model)
    return [list(row[:3]) + ["not-an-item"] for row in ids]


def doc_snippet() -> str:
    """The code block of docs/serving.md that serves a FAISS export without tfrecs."""
    blocks = re.findall(r"```python\n(.*?)```", open(DOC, encoding="utf-8").read(), re.S)
    found = [block for block in blocks if "faiss.read_index" in block and "tfrecs" not in block]
    assert len(found) == 1, "docs/serving.md should hold one FAISS snippet without tfrecs"
    return found[0]


@pytest.fixture(scope="module")
def served(trained, exports, tmp_path_factory):
    """Both exports answered by ONE fresh process importing only tensorflow, faiss and numpy."""
    model, _, _ = trained
    base, made = exports
    scratch = str(tmp_path_factory.mktemp("served"))
    top, _ = recommend(model)
    config = {
        "cwd": base,
        "exports": {kind: os.path.relpath(made[kind].path, base) for kind in made},
        "snippet": doc_snippet(),
        "helper": HELPER,
        "queries": os.path.join(scratch, "queries.npz"),
        "k": K,
        "seen": [top[0, 0], top[0, 1], top[1, 0], "not-an-item"],
        "exclude": per_query_exclusions(model),
        "outputs": os.path.join(scratch, "outputs.npz"),
    }
    np.savez(config["queries"], **queries())
    with open(os.path.join(scratch, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    process = subprocess.run(
        [sys.executable, WORKER, os.path.join(scratch, "config.json")], capture_output=True, text=True, timeout=300
    )
    assert process.returncode == 0, process.stderr[-4000:]
    with np.load(config["outputs"]) as outputs:
        return config, {key: outputs[key] for key in outputs.files}


@pytest.mark.parametrize("kind", list(EXHAUSTIVE))
def test_a_fresh_process_without_tfrecs_answers_the_models_exact_top_k(kind, trained, served):
    model, _, _ = trained
    config, outputs = served
    expected_ids, expected_scores = recommend(model)
    seen_ids, seen_scores = recommend(model, exclude=[config["seen"]] * len(expected_ids))
    excluded_ids, excluded_scores = recommend(model, exclude=config["exclude"])
    cases = {
        "doc/plain": (expected_ids, expected_scores),
        "doc/seen": (seen_ids, seen_scores),
        "helper/plain": (expected_ids, expected_scores),
        "helper/exclude": (excluded_ids, excluded_scores),
    }
    for case, (ids, scores) in cases.items():
        source, what = case.split("/")
        got = outputs[f"{source}/{kind}/{what}/ids"]
        if kind == "faiss-ivf":  # every list probed: exact
            np.testing.assert_array_equal(got, ids, err_msg=f"{kind} {case}")
            np.testing.assert_allclose(outputs[f"{source}/{kind}/{what}/scores"], scores, rtol=1e-5, atol=1e-5)
        else:  # a graph search is approximate: this catalogue's many untrained ids share one vector, and
            # the graph may lead a low-norm query into them (seen in CI: one query of four); k valid ids
            assert recall(got, ids) >= 0.5, (kind, case, recall(got, ids))
            assert all(len(set(row)) == K and set(row) <= set(catalogue()["item_id"]) for row in got)
    # the doc's few lines and the loader search the same index: the same answer
    np.testing.assert_array_equal(outputs[f"doc/{kind}/plain/ids"], outputs[f"helper/{kind}/plain/ids"])
    for row, exclude in zip(outputs[f"helper/{kind}/exclude/ids"], config["exclude"]):
        assert not set(row) & set(exclude) and len(set(row)) == K
    assert not set(outputs[f"doc/{kind}/seen/ids"].ravel()) & set(config["seen"])
    embeddings = model.compute_query_embeddings({k: tf.constant(v) for k, v in queries().items()}).numpy()
    np.testing.assert_allclose(outputs[f"tf1/{kind}"], embeddings, rtol=1e-6)  # the TF1 (TF Serving-like) loader
    assert int(outputs[f"stored/{kind}"]) == list(EXHAUSTIVE[kind].values())[-1]  # ef_search / nprobe in the file


@pytest.mark.parametrize("kind", list(EXHAUSTIVE))
def test_the_loader_in_process_returns_the_same_and_fills_k(kind, trained, exports, served):
    model, _, _ = trained
    config, outputs = served
    export = load_faiss_export(exports[1][kind].path)
    ids, scores = export.search(queries(), exclude=config["exclude"])
    np.testing.assert_array_equal(ids, outputs[f"helper/{kind}/exclude/ids"])
    np.testing.assert_array_equal(scores, outputs[f"helper/{kind}/exclude/scores"])
    # k other than the export's, one exclusion list for every query, and bytes ids
    wide_ids, _ = recommend(model, k=25, exclude=[["i1", "i2"]] * 4)
    found = export.search(queries(), 25, exclude=[b"i1", "i2"])[0]
    assert not {"i1", "i2"} & set(found.ravel()) and found.shape == (4, 25)
    if kind == "faiss-ivf":
        np.testing.assert_array_equal(found, wide_ids)
    else:
        assert recall(found, wide_ids) >= 0.5, recall(found, wide_ids)
    # exclusions that leave 5 items: 5 answers, then padding with the lowest score. Among them the
    # items a full graph search does not reach (HNSW on inner products leaves some; here the
    # untrained ids that share one embedding): the loader scores the stored vectors for those
    _, reached = export.index.search(export.query_embeddings(queries()), NUM_ITEMS)
    unreached = sorted(set(range(NUM_ITEMS)) - set(reached.ravel()))
    left = (unreached[:3] + [row for row in range(NUM_ITEMS) if row not in unreached])[:5]
    rest = [item for row, item in enumerate(export.item_ids) if row not in left]
    ids, scores = export.search(queries(), exclude=rest)
    assert (np.sort(ids[:, :5], axis=1) == np.sort(export.item_ids[left])).all()
    assert (ids[:, 5:] == "").all() and (scores[:, 5:] == LOWEST_SCORE).all()
    rows = dict(zip(export.item_ids, export.titles))
    assert rows["i3"] == "Movie 3"


def test_a_short_ivf_search_is_widened_until_k_is_filled(exports, trained):
    model, _, _ = trained

    export = load_faiss_export(exports[1]["faiss-ivf"].path, nprobe=1)  # one of 8 lists
    assert export.params["nprobe"] == 1
    many = [list(row) for row in recommend(model, k=200)[0]]  # more than any one list holds
    embeddings = export.query_embeddings(queries())
    _, first = export.index.search(embeddings, K + 200, params=faiss.SearchParametersIVF(nprobe=1))
    assert (first < 0).any(axis=1).all()  # one list cannot answer: the loader must widen
    ids, scores = export.search(queries(), K, exclude=many)
    assert (ids != "").all() and (scores > LOWEST_SCORE).all()
    for row, exclude in zip(ids, many):
        assert len(set(row)) == K and not set(row) & set(exclude)


def test_layout_info_and_warmup_of_a_faiss_export(exports, trained):
    model, _, _ = trained
    base, made = exports
    for kind, export in made.items():
        files = sorted(
            os.path.relpath(os.path.join(root, name), export.path)
            for root, _, names in os.walk(export.path)
            for name in names
            if not root.startswith(os.path.join(export.path, "variables"))
        )
        extra = ["faiss.index", "faiss_ids.npy", "faiss_titles.txt", "tf_serving_warmup_requests"]
        assert [f for f in files if f.startswith("assets.extra")] == [f"assets.extra/{name}" for name in extra]
        assert "saved_model.pb" in files and "assets/export_info.json" in files
        info = json.load(open(os.path.join(export.path, "assets", "export_info.json")))
        index = info["index"]
        assert (info["kind"], index["kind"], index["metric"], info["outputs"]) == (
            "faiss_retrieval",
            kind,
            "inner_product",
            ["query_embeddings"],
        )
        assert index["params"] == tune_faiss(kind, NUM_ITEMS, K, **EXHAUSTIVE[kind])
        assert index["file_bytes"] == os.path.getsize(os.path.join(export.path, "assets.extra", "faiss.index")) > 0
        assert index["build_seconds"] >= 0 and index["num_candidates"] == NUM_ITEMS
        assert export.size_bytes > index["file_bytes"]
        ids = np.load(os.path.join(export.path, "assets.extra", "faiss_ids.npy"), allow_pickle=False)
        np.testing.assert_array_equal(ids, catalogue()["item_id"])
        for signature, inputs in read_warmup(export.path):  # the warmup records run against the tower
            outputs = export.module.serving_default({k: tf.constant(v) for k, v in inputs.items()})
            assert signature == "serving_default" and outputs["query_embeddings"].shape == (len(inputs["age"]), 8)
    model_dir = os.path.join(base, "saved_models", "two_tower")
    assert os.listdir(model_dir) == ["1"]  # no temporary directory left behind
    config = open(os.path.join(base, "saved_models", "models.config")).read()
    assert "two_tower_ivf" in config and '"two_tower"' in config


def test_default_parameters_follow_the_catalogue_size():
    assert tune_faiss("faiss-hnsw", 1_000_000, 10) == {"m": 32, "ef_construction": 200, "ef_search": 128}
    assert tune_faiss("faiss-hnsw", 1_000, 50)["ef_search"] == 200
    assert tune_faiss("faiss-ivf", 1_000_000, 10) == {"nlist": 4000, "nprobe": 80}
    assert tune_faiss("faiss-ivf", 1682, 10) == {"nlist": 43, "nprobe": 8}  # ML-100K: 39 points per list
    assert tune_faiss("faiss-ivf", 20, 10) == {"nlist": 1, "nprobe": 1}


def test_the_loader_file_imports_only_numpy_tensorflow_and_faiss():
    tree = ast.parse(open(HELPER, encoding="utf-8").read())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"json", "os", "typing", "numpy", "tensorflow", "faiss"}, imported


def _cli(argv, capsys):
    from tfrecs.cli import main

    status = main(["export", "--model", "two_tower", *argv])
    return status, capsys.readouterr().err.strip()


def test_missing_faiss_is_one_line_naming_the_extra(monkeypatch, capsys, trained, tmp_path):
    model, spec, rows = trained
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now fails as if not installed
    status, error = _cli(["--index", "faiss-hnsw", "--export-root", str(tmp_path)], capsys)
    assert status == 2 and "\n" not in error
    assert error == (
        "tfrecs: error: index 'faiss-hnsw' needs the faiss package, which is not installed: "
        "pip install 'tfrecs[faiss]' (or pip install faiss-cpu)"
    )
    with pytest.raises(ImportError, match=re.escape("pip install 'tfrecs[faiss]'")):
        export_retrieval(
            model, catalogue(), str(tmp_path), "x", feature_spec=spec, query_features=QUERY_FEATURES, index="faiss-ivf"
        )
    assert not os.path.exists(tmp_path / "x")


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--index", "faiss-hnsw", "--index-param", "num_leaves=4"],
            "unknown faiss-hnsw parameter(s) ['num_leaves']; valid: m, ef_construction, ef_search",
        ),
        (
            ["--index", "faiss-ivf", "--index-param", "ef_search=64"],
            "unknown faiss-ivf parameter(s) ['ef_search']; valid: nlist, nprobe",
        ),
        (
            ["--index", "faiss-ivf", "--index-param", "nprobe=0"],
            "faiss-ivf parameter nprobe=0 must be a positive integer",
        ),
        (
            ["--index", "faiss-hnsw", "--index-param", "ef_search=1.5"],
            "faiss-hnsw parameter ef_search=1.5 must be a positive integer",
        ),
        (
            ["--index", "brute_force", "--index-param", "nprobe=4"],
            "--index-param applies to --index scann, faiss-hnsw or faiss-ivf, not brute_force",
        ),
        (
            ["--index", "faiss-ivf", "--rerank", "deepfm"],
            "--index faiss-ivf serves neighbours from FAISS beside the SavedModel; a two-stage export keeps its "
            "index inside: use --index scann or brute_force",
        ),
    ],
)
def test_bad_index_params_are_clear_errors_before_training(argv, message, capsys, tmp_path):
    status, error = _cli([*argv, "--export-root", str(tmp_path)], capsys)
    assert (status, error) == (2, f"tfrecs: error: {message}")


def test_bad_faiss_exports_fail_with_clear_errors(trained, exports, tmp_path):
    model, spec, rows = trained
    common = dict(feature_spec=spec, query_features=QUERY_FEATURES, columns=rows)
    with pytest.raises(ValueError, match="nprobe=9 must be at most nlist=8"):
        export_retrieval(
            model, catalogue(), str(tmp_path), "x", index="faiss-ivf", index_params={"nlist": 8, "nprobe": 9}, **common
        )
    with pytest.raises(ValueError, match="nlist=501 must be at most the candidate count 500"):
        export_retrieval(
            model, catalogue(), str(tmp_path), "x", index="faiss-ivf", index_params={"nlist": 501}, **common
        )
    assert not os.path.exists(tmp_path / "x")
    with pytest.raises(ValueError, match=re.escape("unknown search parameter(s) ['nprobe'] for a faiss-hnsw export")):
        load_faiss_export(exports[1]["faiss-hnsw"].path, nprobe=4)
    with pytest.raises(ValueError, match="not a FAISS export"):
        load_faiss_export(str(tmp_path))


def test_tfrecs_export_command_writes_a_faiss_export_and_shows_a_user(trained, exports, capsys):
    import argparse

    from tfrecs.cli_export import add_export_parser
    from tfrecs.export.artifacts import RankingArtifacts, RetrievalArtifacts
    from tfrecs.recipes import TrainResult, register_recipe

    model, spec, rows = trained
    users = split().train.user_index.ids  # the per-user query rows --show-user reads
    per_user = {"user_id": users, "age": np.asarray([18 + int(user[1:]) % 50 for user in users], dtype=np.int64)}
    artifacts = RetrievalArtifacts(
        feature_spec=spec,
        query_features=QUERY_FEATURES,
        candidates=catalogue(),
        split=split(),
        item_titles=titles(),
        user_query_features=per_user,
    )

    @register_recipe("tiny_two_tower_for_faiss_tests")
    def tiny_recipe(config):
        return TrainResult(model=model, figures={"ndcg@10": 0.5}, artifacts=artifacts)

    parser = argparse.ArgumentParser(prog="tfrecs")
    add_export_parser(parser.add_subparsers(dest="command"))
    root = os.path.join(exports[0], "saved_models")
    argv = ["export", "--model", "tiny_two_tower_for_faiss_tests", "--index", "faiss-hnsw", "--export-root", root]
    args = parser.parse_args(argv + ["--index-param", "ef_search=600", "--model-name", "cli", "--show-user", "u7"])
    figures = args.run(args)
    assert (figures["export_kind"], figures["index"], figures["k"]) == ("faiss_retrieval", "faiss-hnsw", 10)
    printed = capsys.readouterr().out
    shown = re.findall(r"^\s+\d+\. (.+)  \(item (\S+), score", printed, re.M)
    assert len(shown) == K and all(title == f"Movie {item[1:]}" for title, item in shown)
    train = artifacts.split.train.interactions
    assert not {item for _, item in shown} & set(train["item_id"][train["user_id"] == "u7"])  # seen: excluded
    info = json.load(open(os.path.join(figures["export_path"], "assets", "export_info.json")))
    assert info["index"]["params"]["ef_search"] == 600
    result = TrainResult(model=model, figures={}, artifacts=artifacts)
    with pytest.raises(ValueError, match="a two-stage export keeps its index inside"):
        export_trained(result, root, "y", index="faiss-hnsw", rerank=result)
    ranking = TrainResult(model=model, figures={}, artifacts=RankingArtifacts(spec, ["user_id"], split=None))
    with pytest.raises(ValueError, match="applies to retrieval models; TinyTwoTower exports without an index"):
        export_trained(ranking, root, "y", index="faiss-ivf")
