"""Retrieval exports: raw query features in, top-k raw item ids and scores out, index inside.

Each export is reloaded in a fresh process (TensorFlow + ScaNN only) through
``tf.saved_model.load`` and the TF1 session loader, and must answer exactly like the
in-memory model; the brute-force export must equal exact search computed here by hand.
"""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfrecs  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
from load_export_models import (  # noqa: E402
    NUM_ITEMS,
    QuerylessRetrieval,
    TinyTwoTower,
    as_bytes,
    catalogue,
    feature_spec,
    fitted,
    interactions,
    load_in_fresh_process,
    split,
    titles,
)

from tfrecs.data import FeatureSpec  # noqa: E402
from tfrecs.export import build_index, export_retrieval, read_warmup  # noqa: E402

K = 10
QUERY_FEATURES = ["user_id", "age"]


@pytest.fixture(scope="module")
def trained():
    rows = interactions()
    spec = feature_spec(rows)
    return fitted(TinyTwoTower(spec), rows), spec, rows


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
    model, spec, rows = trained
    root = str(tmp_path_factory.mktemp("saved_models"))
    made = {
        kind: export_retrieval(
            model,
            catalogue(),
            root,
            f"two_tower_{kind}",
            feature_spec=spec,
            query_features=QUERY_FEATURES,
            index=kind,
            k=K,
            item_titles=titles(),
            columns=rows,
        )
        for kind in ("brute_force", "scann")
    }
    return root, made


@pytest.fixture(scope="module")
def reloaded(exports, tmp_path_factory):
    """Both exports answered by a fresh process: {"brute_force": outputs, "scann": outputs}."""
    kinds = ["brute_force", "scann"]
    outputs = load_in_fresh_process(
        [(exports[1][kind].path, queries()) for kind in kinds], str(tmp_path_factory.mktemp("loaded"))
    )
    return dict(zip(kinds, outputs))


def queries():
    return {
        "user_id": np.asarray(["u1", "u7", "u33", "never-seen"], dtype=object),
        "age": np.asarray([20, 41, 18, 30], dtype=np.int64),
    }


def exact_top_k(model, features, exclude=()):
    query = model.compute_query_embeddings({k: tf.constant(v) for k, v in features.items()}).numpy()
    items = catalogue()["item_id"]
    candidates = model.compute_candidate_embeddings({"item_id": tf.constant(items)}).numpy()
    scores = query @ candidates.T
    scores[:, np.isin(items, list(exclude))] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return items[order], np.take_along_axis(scores, order, axis=1)


def test_brute_force_export_equals_exact_search_in_a_fresh_process(trained, exports, reloaded):
    model, _, _ = trained
    export = exports[1]["brute_force"]
    expected_ids, expected_scores = exact_top_k(model, queries())
    in_memory = export.module.serving_default({k: tf.constant(v) for k, v in queries().items()}, tf.fill([1, 0], ""))
    np.testing.assert_array_equal(as_bytes(in_memory["item_ids"].numpy()), as_bytes(expected_ids))
    np.testing.assert_allclose(in_memory["scores"].numpy(), expected_scores, rtol=1e-5, atol=1e-6)

    loaded = reloaded["brute_force"]
    for loader in ("tf1", "tf2"):
        np.testing.assert_array_equal(loaded[f"{loader}/item_ids"], as_bytes(expected_ids))
        np.testing.assert_allclose(loaded[f"{loader}/scores"], expected_scores, rtol=1e-5, atol=1e-6)
        assert loaded[f"{loader}/scores"].dtype == np.float32
        titles_expected = np.asarray([[f"Movie {i[1:]}" for i in row] for row in expected_ids]).astype("S")
        np.testing.assert_array_equal(loaded[f"{loader}/titles"], titles_expected)


def test_scann_export_reloads_with_the_same_ids_and_scores(trained, exports, reloaded):
    model, _, _ = trained
    export = exports[1]["scann"]
    assert export.info["index"]["kind"] == "scann"
    in_memory = export.module.serving_default({k: tf.constant(v) for k, v in queries().items()}, tf.fill([1, 0], ""))
    loaded = reloaded["scann"]
    for loader in ("tf1", "tf2"):
        np.testing.assert_array_equal(loaded[f"{loader}/item_ids"], as_bytes(in_memory["item_ids"].numpy()))
        np.testing.assert_allclose(loaded[f"{loader}/scores"], in_memory["scores"].numpy(), rtol=1e-6)
    expected_ids, _ = exact_top_k(model, queries())
    hits = [len(set(a) & set(b)) for a, b in zip(loaded["tf1/item_ids"], as_bytes(expected_ids))]
    assert np.mean(hits) / K >= 0.9, hits


def test_warmup_records_parse_and_run_against_the_signature(exports, reloaded):
    export = exports[1]["scann"]
    records = read_warmup(export.path)
    assert [sig for sig, _ in records] == ["serving_default", "serving_default"]
    assert set(records[0][1]) == set(QUERY_FEATURES)  # the exclusion input is optional
    assert set(records[1][1]) == set(QUERY_FEATURES) | {"exclude_item_ids"}
    loaded = reloaded["scann"]
    for index, (_, inputs) in enumerate(records):
        ids = loaded[f"warmup/{index}/item_ids"]
        assert ids.shape == (len(inputs["user_id"]), K)
        if "exclude_item_ids" in inputs:
            assert not np.isin(ids, inputs["exclude_item_ids"]).any()


def test_excluded_items_never_come_back_and_k_stays_full(trained, exports):
    model, _, _ = trained
    serve = exports[1]["brute_force"].module.serving_default
    features = {k: tf.constant(v) for k, v in queries().items()}
    first_ids, _ = exact_top_k(model, queries())
    seen = sorted(set(first_ids[:, :3].reshape(-1).astype(str)))
    expected_ids, expected_scores = exact_top_k(model, queries(), exclude=seen)
    out = serve(features, tf.constant([seen]))  # [1, m] applies to every query
    np.testing.assert_array_equal(as_bytes(out["item_ids"].numpy()), as_bytes(expected_ids))
    np.testing.assert_allclose(out["scores"].numpy(), expected_scores, rtol=1e-5, atol=1e-6)
    per_query = tf.constant([[ids[0], ""] for ids in first_ids.astype(str)])  # [batch, m]
    out = serve(features, per_query)
    assert not any(first_ids[row, 0].encode() in out["item_ids"].numpy()[row] for row in range(len(first_ids)))


def test_exclusions_that_exhaust_the_catalogue_pad_with_empty_ids():
    embeddings = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    ids = np.asarray([f"i{i}" for i in range(12)])
    index, report = build_index(embeddings, ids, kind="brute_force", k=10)
    scores, found, _, valid = index.search(tf.constant(embeddings[:2]), 10, tf.constant([ids[:5]]))
    assert report.num_candidates == 12 and report.build_seconds >= 0
    assert valid.numpy().sum(axis=1).tolist() == [7, 7]
    assert (found.numpy()[:, 7:] == b"").all()
    assert (scores.numpy()[:, 7:] == np.finfo(np.float32).min).all()
    assert not np.isin(found.numpy()[:, :7].astype(str), ids[:5]).any()


def test_requests_without_exclusions_take_the_short_path_with_the_same_answers():
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(400, 8)).astype(np.float32)
    ids = np.arange(100, 500, dtype=np.int64)
    queries = tf.constant(embeddings[:6] + rng.normal(size=(6, 8)).astype(np.float32))
    exact = build_index(embeddings, ids, kind="brute_force", k=10)[0]
    scann = build_index(embeddings, ids, kind="scann", k=10)[0]
    for index in (exact, scann):
        short = index.search(queries, 10, tf.zeros([1, 0], tf.int64))
        general = index.search(queries, 10, tf.constant([[-7]], tf.int64))  # an id no row has
        for got, want in zip(short, general):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    # One build, searched everywhere and re-scoring every row: ScaNN's answers become exact.
    everywhere = scann.with_search(num_leaves_to_search=scann.layer.params.num_leaves, num_reordering_candidates=400)
    np.testing.assert_array_equal(everywhere.search(queries, 10)[1].numpy(), exact.search(queries, 10)[1].numpy())
    with pytest.raises(ValueError, match="num_leaves_to_search=999 must be between 1 and num_leaves"):
        scann.with_search(num_leaves_to_search=999)


def test_signature_matches_training_names_and_dtypes(exports):
    export = exports[1]["scann"]
    signature = tf.saved_model.load(export.path).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in inputs.items()} == {
        "user_id": (tf.string, [None]),
        "age": (tf.int64, [None]),
        "exclude_item_ids": (tf.string, [None, None]),
    }
    outputs = signature.structured_outputs
    assert outputs["item_ids"].dtype == tf.string and outputs["scores"].dtype == tf.float32
    assert export.info["k"] == K and export.info["index"]["params"]["num_leaves"] == round(np.sqrt(NUM_ITEMS))


def test_serving_rejects_wrong_dtypes_and_shapes_with_tensorflow_errors(exports):
    path = exports[1]["brute_force"].path
    signature = tf.saved_model.load(path).signatures["serving_default"]
    good = {"user_id": tf.constant(["u1"]), "age": tf.constant([3], tf.int64), "exclude_item_ids": tf.fill([1, 0], "")}
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a int64 tensor but is a string"):
        signature(**{**good, "age": tf.constant(["3"])})
    with pytest.raises(tf.errors.InvalidArgumentError):  # a [batch, 1] matrix for a [batch] input
        signature(**{**good, "user_id": tf.constant([["u1"]])})
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        sig = meta_graph.signature_def["serving_default"]
        fetches = {name: info.name for name, info in sig.outputs.items()}
        with pytest.raises(ValueError, match="Cannot feed value of shape"):
            session.run(fetches, {sig.inputs["user_id"].name: [["u1"]], sig.inputs["age"].name: [3]})
        with pytest.raises(tf.errors.InvalidArgumentError):  # exclusions for 2 queries, batch of 3
            session.run(
                fetches,
                {
                    sig.inputs["user_id"].name: ["u1", "u2", "u3"],
                    sig.inputs["age"].name: [3, 4, 5],
                    sig.inputs["exclude_item_ids"].name: [["i1"], ["i2"]],
                },
            )
        ok = session.run(fetches, {sig.inputs["user_id"].name: ["u1"], sig.inputs["age"].name: [3]})
        assert ok["item_ids"].shape == (1, K)  # the session survives bad requests


def test_assets_hold_the_feature_spec_and_vocabularies_but_no_optimizer(trained, exports):
    _, spec, _ = trained
    path = exports[1]["scann"].path
    assert FeatureSpec.load(os.path.join(path, "assets", "feature_spec.json")).to_json() == spec.to_json()
    with open(os.path.join(path, "assets", "vocab_user_id.txt"), encoding="utf-8") as handle:
        assert handle.read().splitlines() == list(spec["user_id"].vocabulary)
    variables = [name for name, _ in tf.train.list_variables(os.path.join(path, "variables", "variables"))]
    assert not [name for name in variables if "optimizer" in name.lower()], variables


def test_bad_exports_fail_with_clear_errors(trained, exports):
    model, spec, rows = trained
    root = exports[0]
    common = dict(feature_spec=spec, columns=rows)
    with pytest.raises(ValueError, match="no query tower"):
        export_retrieval(QuerylessRetrieval(spec), catalogue(), root, "x", query_features=QUERY_FEATURES, **common)
    with pytest.raises(ValueError, match=f"k=501 must be between 1 and the number of candidates \\({NUM_ITEMS}\\)"):
        export_retrieval(model, catalogue(), root, "x", query_features=QUERY_FEATURES, k=501, **common)
    with pytest.raises(ValueError, match="version 1 of model 'two_tower_scann' already exists"):
        export_retrieval(
            model,
            catalogue(),
            root,
            "two_tower_scann",
            query_features=QUERY_FEATURES,
            version=1,
            index="brute_force",
            **common,
        )
    with pytest.raises(ValueError, match="reads feature 'age'"):
        export_retrieval(model, catalogue(), root, "x", query_features=["user_id"], **common)
    with pytest.raises(ValueError, match="unknown ScaNN parameter"):
        export_retrieval(
            model, catalogue(), root, "x", query_features=QUERY_FEATURES, scann_params={"leaves": 3}, **common
        )
    assert not os.path.exists(os.path.join(root, "x"))  # nothing written for a refused export


def test_tfrecs_export_command_trains_a_recipe_and_exports_its_result(trained, exports):
    import argparse

    from tfrecs.cli_export import add_export_parser, run_export
    from tfrecs.export.artifacts import RetrievalArtifacts
    from tfrecs.recipes import TrainResult, register_recipe

    model, spec, rows = trained

    @register_recipe("tiny_two_tower_for_export_tests")
    def tiny_recipe(config):
        return TrainResult(
            model=model,
            figures={"ndcg@10": 0.5, "split": "test", "seed": config.seed},
            artifacts=RetrievalArtifacts(
                feature_spec=spec,
                query_features=QUERY_FEATURES,
                candidates=catalogue(),
                split=split(),
                item_titles=titles(),
            ),
        )

    parser = argparse.ArgumentParser(prog="tfrecs")
    add_export_parser(parser.add_subparsers(dest="command"))
    root = exports[0]
    args = parser.parse_args(
        [
            "export",
            "--model",
            "tiny_two_tower_for_export_tests",
            "--index",
            "brute_force",
            "--k",
            "7",
            "--export-root",
            root,
            "--model-name",
            "cli_two_tower",
            "--no-warmup",
        ]
    )
    figures = args.run(args)
    assert figures["export_path"] == os.path.join(root, "cli_two_tower", "1")
    assert (figures["export_kind"], figures["index"], figures["k"], figures["ndcg@10"]) == (
        "retrieval",
        "brute_force",
        7,
        0.5,
    )
    assert "cli_two_tower" in open(os.path.join(root, "models.config")).read()
    args = parser.parse_args(
        [
            "export",
            "--model",
            "tiny_two_tower_for_export_tests",
            "--index",
            "brute_force",
            "--index-param",
            "num_leaves=10",
            "--export-root",
            root,
        ]
    )
    with pytest.raises(ValueError, match="--index-param applies to --index scann"):
        run_export(args)


def test_preview_reloads_the_export_from_disk_and_answers_one_user_with_titles(trained, exports):
    from tfrecs.export.preview import top_k_from_export

    model, _, _ = trained
    one_query = {k: v[1:2] for k, v in queries().items()}
    first_ids, _ = exact_top_k(model, one_query)
    seen = list(first_ids[0, :2].astype(str))
    expected_ids, expected_scores = exact_top_k(model, one_query, exclude=seen)
    rows = top_k_from_export(
        exports[1]["brute_force"].path, {k: v[0] for k, v in one_query.items()}, exclude_item_ids=seen
    )
    assert [row["item_id"] for row in rows] == list(expected_ids[0].astype(str))
    np.testing.assert_allclose([row["score"] for row in rows], expected_scores[0], rtol=1e-5, atol=1e-6)
    title_of = dict(zip(catalogue()["item_id"].astype(str), titles()))
    assert [row["title"] for row in rows] == [title_of[row["item_id"]] for row in rows]
    assert [row["rank"] for row in rows] == list(range(1, K + 1))
