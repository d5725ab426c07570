"""Two-stage exports: retrieve candidates with the index, re-rank them with a ranking model, one SavedModel."""

import os
import sys

import numpy as np
import pytest

import tfrecs  # noqa: F401
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
from load_export_models import (
    TinyRanking,
    TinyTwoTower,
    as_bytes,
    catalogue,
    feature_spec,
    fitted,  # noqa: E402
    interactions,
    load_in_fresh_process,
    split,
)

from tfrecs.export import export_trained, export_two_stage  # noqa: E402
from tfrecs.export.artifacts import RankingArtifacts, RetrievalArtifacts  # noqa: E402
from tfrecs.recipes import TrainResult  # noqa: E402

NUM_CANDIDATES = 40
K = 5


def requests():
    return {"user_id": np.asarray(["u3", "u12", "u30"], dtype=object), "age": np.asarray([25, 33, 50], np.int64)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    rows = interactions()
    spec = feature_spec(rows)
    retrieval = fitted(TinyTwoTower(spec), rows)
    ranking = fitted(TinyRanking(spec), rows)
    root = str(tmp_path_factory.mktemp("saved_models"))
    common = dict(
        feature_spec=spec,
        query_features=["user_id", "age"],
        ranking_features=list(TinyRanking.FEATURES),
        num_candidates=NUM_CANDIDATES,
        k=K,
        columns=rows,
    )
    exports = {
        "brute_force": export_two_stage(
            retrieval, ranking, catalogue(), root, "two_stage_brute_force", index="brute_force", **common
        )
    }
    # The ScaNN one goes through export_trained, as `tfrecs export --rerank` does: TrainResults by artifacts.
    age = {"age": tf.TensorSpec([None], tf.int64)}  # a signature override, as a recipe may give one
    retrieved = TrainResult(
        model=retrieval,
        figures={},
        artifacts=RetrievalArtifacts(
            feature_spec=spec,
            query_features=["user_id", "age"],
            candidates=catalogue(),
            split=split(),
            serving_signature=age,
        ),
    )
    ranked = TrainResult(
        model=ranking,
        figures={},
        artifacts=RankingArtifacts(
            feature_spec=spec, features=list(TinyRanking.FEATURES), split=split(), serving_signature=age
        ),
    )
    exports["scann"] = export_trained(
        retrieved, root, "two_stage_scann", index="scann", k=K, rerank=ranked, num_candidates=NUM_CANDIDATES
    )
    return retrieval, ranking, root, common, exports


def retrieve_then_rank_by_hand(retrieval, ranking, features):
    """Exact top-NUM_CANDIDATES by dot product, then the click probability of each pair, best K."""
    table = catalogue()
    query = retrieval.compute_query_embeddings({k: tf.constant(v) for k, v in features.items()}).numpy()
    items = retrieval.compute_candidate_embeddings({"item_id": tf.constant(table["item_id"])}).numpy()
    genres = np.asarray([list(g) + [""] * (3 - len(g)) for g in table["genres"]], dtype=object)
    ids, probabilities = [], []
    for row, vector in enumerate(query):
        rows = np.argsort(-(items @ vector), kind="stable")[:NUM_CANDIDATES]
        pairs = {
            "user_id": np.repeat(features["user_id"][row], NUM_CANDIDATES),
            "age": np.repeat(features["age"][row], NUM_CANDIDATES),
            "item_id": table["item_id"][rows],
            "genres": genres[rows],
        }
        click = tf.sigmoid(ranking({k: tf.constant(v) for k, v in pairs.items()})["click"][:, 0]).numpy()
        best = np.argsort(-click, kind="stable")[:K]
        ids.append(table["item_id"][rows][best])
        probabilities.append(click[best])
    return np.asarray(ids), np.asarray(probabilities)


def test_brute_force_two_stage_equals_retrieve_then_rank_by_hand(setup):
    retrieval, ranking, _, _, exports = setup
    served = exports["brute_force"].module.serving_default(
        {k: tf.constant(v) for k, v in requests().items()}, tf.fill([1, 0], "")
    )
    expected_ids, expected_scores = retrieve_then_rank_by_hand(retrieval, ranking, requests())
    np.testing.assert_allclose(served["scores"].numpy(), expected_scores, rtol=1e-5)
    np.testing.assert_array_equal(as_bytes(served["item_ids"].numpy()), as_bytes(expected_ids))
    assert exports["brute_force"].info["item_side_features"] == ["item_id", "genres"]
    assert exports["brute_force"].info["rank_by"] == "click"


def test_scann_two_stage_reloads_in_a_fresh_process_with_the_same_answers(setup, tmp_path):
    _, _, _, _, exports = setup
    export = exports["scann"]
    assert export.kind == "two_stage" and export.info["index"]["kind"] == "scann"
    served = export.module.serving_default({k: tf.constant(v) for k, v in requests().items()}, tf.fill([1, 0], ""))
    [loaded] = load_in_fresh_process([(export.path, requests())], str(tmp_path))
    for loader in ("tf1", "tf2"):
        np.testing.assert_array_equal(loaded[f"{loader}/item_ids"], as_bytes(served["item_ids"].numpy()))
        np.testing.assert_allclose(loaded[f"{loader}/scores"], served["scores"].numpy(), rtol=1e-6)
        np.testing.assert_allclose(loaded[f"{loader}/retrieval_scores"], served["retrieval_scores"].numpy(), rtol=1e-6)
    assert (np.diff(loaded["tf1/scores"], axis=1) <= 0).all()  # ordered by the ranking model
    assert loaded["warmup/0/item_ids"].shape == (1, K) and loaded["warmup/1/item_ids"].shape == (4, K)


def test_two_stage_exclusions_and_bad_arguments(setup):
    retrieval, ranking, root, common, exports = setup
    serve = exports["brute_force"].module.serving_default
    features = {k: tf.constant(v) for k, v in requests().items()}
    first = serve(features, tf.fill([1, 0], ""))["item_ids"].numpy()
    again = serve(features, tf.constant(first[:, :2]))["item_ids"].numpy()
    for row in range(len(first)):
        assert not set(first[row, :2]) & set(again[row])
    with pytest.raises(ValueError, match=f"k=50 must be between 1 and num_candidates={NUM_CANDIDATES}"):
        export_two_stage(retrieval, ranking, catalogue(), root, "bad", **{**common, "k": 50})
    with pytest.raises(ValueError, match="rank_by='ctr' is not a task"):
        export_two_stage(retrieval, ranking, catalogue(), root, "bad", rank_by="ctr", **common)
    with pytest.raises(ValueError, match="num_candidates=501 must be between 1 and the number of candidates"):
        export_two_stage(retrieval, ranking, catalogue(), root, "bad", **{**common, "num_candidates": 501})
    assert not os.path.exists(os.path.join(root, "bad"))
