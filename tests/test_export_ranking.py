"""Ranking exports: raw features in, one probability (binary) or score (regression) per task out."""

import os
import sys

import numpy as np
import pytest

import tfrecs  # noqa: F401
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
from load_export_models import TinyRanking, feature_spec, fitted, interactions, load_in_fresh_process  # noqa: E402

from tfrecs.export import export_ranking, output_names, read_warmup, task_kinds  # noqa: E402
from tfrecs.models.base import RankingModel  # noqa: E402

FEATURES = list(TinyRanking.FEATURES)


def requests():
    return {
        "user_id": np.asarray(["u1", "u2", "unknown"], dtype=object),
        "age": np.asarray([20, 35, 61], np.int64),
        "item_id": np.asarray(["i5", "i77", "i499"], dtype=object),
        "genres": np.asarray([["drama", "", ""], ["action", "comedy", ""], ["nope", "horror", "drama"]], dtype=object),
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    rows = interactions()
    spec = feature_spec(rows)
    root = str(tmp_path_factory.mktemp("saved_models"))
    model = fitted(TinyRanking(spec), rows)
    export = export_ranking(model, root, "mmoe_like", feature_spec=spec, features=FEATURES, columns=rows)
    return model, spec, rows, root, export


def test_multi_task_export_serves_one_output_per_task_in_a_fresh_process(setup, tmp_path):
    model, _, _, _, export = setup
    logits = model({k: tf.constant(v) for k, v in requests().items()})
    expected = {
        "click_probability": tf.sigmoid(logits["click"][:, 0]).numpy(),
        "rating_score": logits["rating"][:, 0].numpy(),
    }
    [loaded] = load_in_fresh_process([(export.path, requests())], str(tmp_path))
    for loader in ("tf1", "tf2"):
        for name, value in expected.items():
            np.testing.assert_allclose(loaded[f"{loader}/{name}"], value, rtol=1e-5, atol=1e-6)
            assert loaded[f"{loader}/{name}"].dtype == np.float32
    assert ((expected["click_probability"] > 0) & (expected["click_probability"] < 1)).all()
    records = read_warmup(export.path)
    assert [len(inputs["user_id"]) for _, inputs in records] == [1, 4]
    for index in range(len(records)):
        assert loaded[f"warmup/{index}/click_probability"].shape == (len(records[index][1]["user_id"]),)


def test_signature_takes_the_training_dtypes(setup):
    _, _, _, _, export = setup
    inputs = tf.saved_model.load(export.path).signatures["serving_default"].structured_input_signature[1]
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in inputs.items()} == {
        "user_id": (tf.string, [None]),
        "age": (tf.int64, [None]),
        "item_id": (tf.string, [None]),
        "genres": (tf.string, [None, 3]),
    }
    assert export.info["outputs"] == {"click": "click_probability", "rating": "rating_score"}


def test_single_binary_task_outputs_a_probability(setup):
    _, spec, rows, root, _ = setup
    model = TinyRanking(spec, tasks=("click",))  # untrained: the export only needs the graph
    assert task_kinds(model) == {"click": "binary"} and output_names(task_kinds(model)) == {"click": "probability"}
    export = export_ranking(model, root, "ctr", feature_spec=spec, features=FEATURES, columns=rows, warmup=False)
    served = export.module.serving_default({k: tf.constant(v) for k, v in requests().items()})
    assert list(served) == ["probability"]
    logits = model({k: tf.constant(v) for k, v in requests().items()})
    np.testing.assert_allclose(served["probability"].numpy(), tf.sigmoid(logits[:, 0]).numpy(), rtol=1e-6)
    assert not os.path.exists(os.path.join(export.path, "assets.extra"))


def test_bad_ranking_exports_and_requests_fail_clearly(setup):
    model, spec, rows, root, export = setup
    with pytest.raises(ValueError, match="cannot rank"):
        export_ranking(RankingModel(), root, "nothing", feature_spec=spec, features=FEATURES, columns=rows)
    with pytest.raises(ValueError, match="reads feature 'genres'"):
        export_ranking(model, root, "partial", feature_spec=spec, features=["user_id", "age", "item_id"], columns=rows)
    with pytest.raises(ValueError, match="version 1 of model 'mmoe_like' already exists"):
        export_ranking(model, root, "mmoe_like", feature_spec=spec, features=FEATURES, columns=rows, version=1)
    signature = tf.saved_model.load(export.path).signatures["serving_default"]
    good = {k: tf.constant(v) for k, v in requests().items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a int64 tensor but is a float"):
        signature(**{**good, "age": tf.constant([1.0, 2.0, 3.0])})
