"""Two-Tower: learns planted structure, serves OOV ids by their features, refuses bad input."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecs import models
from tfrecs.data import make_split
from tfrecs.data.feature_spec import SEQUENCE_PADDING
from tfrecs.data.synthetic import synthetic_implicit
from tfrecs.evaluation import evaluate_protocol
from tfrecs.export.artifacts import RetrievalArtifacts
from tfrecs.models import MissingInputError
from tfrecs.models.popularity import Popularity
from tfrecs.models.two_tower import TwoTower
from tfrecs.pipelines import TwoTowerData
from tfrecs.pipelines.two_tower_view import HISTORY
from tfrecs.recipes import TrainConfig, get_recipe
from tfrecs.recipes.two_tower import build_model

TINY = dict(embedding_dim=16, query_units=(32, 16), candidate_units=(32, 16), temperature=0.1, dropout=0.0)
HISTORY_LENGTH = 10


@pytest.fixture(scope="module")
def synthetic_data():
    ds = synthetic_implicit(num_users=300, num_items=120, interactions_per_user=20, seed=3)
    return TwoTowerData.from_split(make_split(ds, "random", seed=2020), history_length=HISTORY_LENGTH)


@pytest.fixture(scope="module")
def ml100k_data(ml100k):
    return TwoTowerData.from_split(make_split(ml100k, "random", seed=2020), history_length=HISTORY_LENGTH)


def test_two_tower_is_registered_with_a_recipe():
    assert models.get("two_tower") is TwoTower
    assert callable(get_recipe("two_tower"))


def test_learns_planted_structure_and_beats_popularity(synthetic_data):
    tf.keras.utils.set_random_seed(0)
    model = build_model(synthetic_data, 0.01, **TINY)
    model.fit(synthetic_data.training_dataset(batch_size=256, seed=0), epochs=6, verbose=0)
    split = synthetic_data.split
    ours = evaluate_protocol(synthetic_data.score_fn(model), split, "random-full")
    floor = evaluate_protocol(Popularity.from_dataset(split.train), split, "random-full")
    assert ours["ndcg@10"] > 1.2 * floor["ndcg@10"], (ours["ndcg@10"], floor["ndcg@10"])
    assert ours["recall@10"] > floor["recall@10"]


def test_training_history_leaves_out_the_positive(synthetic_data):
    batch = next(iter(synthetic_data.training_dataset(batch_size=512, seed=1)))
    history, items = batch[HISTORY].numpy(), batch["item_id"].numpy()
    assert not (history == items[:, None]).any()  # padding is -1, never an item id
    # Apart from its own positive, a row's history is its user's most recent training items.
    full = synthetic_data.user_features[HISTORY][batch["user_index"].numpy()]
    kept = full != items[:, None]
    pad = SEQUENCE_PADDING["int64"]
    assert all(list(h[h != pad]) == list(f[k & (f != pad)]) for h, f, k in zip(history, full, kept))
    probability = batch["candidate_sampling_probability"].numpy()
    np.testing.assert_allclose(probability, synthetic_data.sampling_probability[batch["item_index"].numpy()], rtol=1e-6)


def _user(user_id, age, gender, occupation):
    return {
        "user_id": tf.constant([user_id]),
        "age": tf.constant([age], tf.int64),
        "gender": tf.constant([gender]),
        "occupation": tf.constant([occupation]),
        HISTORY: tf.constant([[""] * HISTORY_LENGTH]),
    }


def test_unseen_user_and_item_ids_are_embedded_from_their_features(ml100k_data):
    tf.keras.utils.set_random_seed(1)
    model = build_model(ml100k_data, 0.01, **TINY)
    model.fit(ml100k_data.training_dataset(batch_size=1024, seed=0).take(5), epochs=1, verbose=0)
    student = model(_user("new-1", 19, "F", "student")).numpy()
    retired = model(_user("new-2", 70, "M", "retired")).numpy()
    same_features = model(_user("new-3", 19, "F", "student")).numpy()
    assert np.isfinite(student).all() and np.linalg.norm(student) > 0.5
    np.testing.assert_allclose(student, same_features, atol=1e-6)  # both ids fall in the OOV bucket
    assert float(np.sum(student * retired)) < 0.999  # features tell them apart
    items = {k: tf.constant(v[:2]) for k, v in ml100k_data.candidates.items()}
    items["item_id"] = tf.constant(["unseen-a", "unseen-b"])
    vectors = model.candidate_embeddings(items).numpy()
    assert np.isfinite(vectors).all() and float(np.sum(vectors[0] * vectors[1])) < 0.999


def test_a_batch_missing_a_tower_feature_is_named(ml100k_data):
    model = build_model(ml100k_data, 0.01, **TINY)
    features = _user("1", 30, "M", "writer")
    del features[HISTORY]
    with pytest.raises(MissingInputError, match=r"query tower reads input\(s\) \['history'\], which the batch lacks"):
        model(features)
    with pytest.raises(
        MissingInputError, match=r"candidate tower reads input\(s\) \['genres', 'release_year', 'title'\]"
    ):
        model.candidate_embeddings({"item_id": tf.constant(["1"])})


def test_logq_without_sampling_probabilities_names_the_missing_input(synthetic_data):
    model = TwoTower(synthetic_data.spec, ["user_id"], ["item_id"], embedding_dim=4, query_units=4, candidate_units=4)
    batch = {
        "user_id": tf.constant(synthetic_data.user_features["user_id"][:4]),
        "item_id": tf.constant(synthetic_data.candidates["item_id"][:4]),
    }
    with pytest.raises(
        MissingInputError,
        match=r"\['candidate_sampling_probability'\].*add_sampling_probability"
        r".*logq_correction=False",
    ):
        model.compute_loss(batch, training=True)
    plain = TwoTower(
        synthetic_data.spec,
        ["user_id"],
        ["item_id"],
        embedding_dim=4,
        query_units=4,
        candidate_units=4,
        logq_correction=False,
    )
    plain.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    plain.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    plain.index_candidates({"item_id": tf.constant(synthetic_data.candidates["item_id"])})
    ids, scores = plain.recommend({"user_id": batch["user_id"][:2]}, k=5, exclude=[[batch["item_id"][0].numpy()], []])
    assert ids.shape == (2, 5) and scores.dtype == tf.float32
    assert batch["item_id"][0].numpy() not in ids.numpy()[0]
    assert set(ids.numpy().reshape(-1)) <= set(synthetic_data.candidates["item_id"])


def test_unknown_set_keys_list_model_keywords_and_training_settings():
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['dim'\].*temperature.*history_length"):
        get_recipe("two_tower")(TrainConfig(model="two_tower", dataset="synthetic-implicit", hparams={"dim": 3}))


def test_towers_must_share_the_embedding_size(ml100k_data):
    with pytest.raises(ValueError, match="query_units ends in 16, candidate_units ends in 8"):
        TwoTower(
            ml100k_data.spec,
            ml100k_data.query_features,
            ml100k_data.candidate_features,
            query_units=(32, 16),
            candidate_units="32,8",
        )
    with pytest.raises(ValueError, match=r"feature\(s\) \['zip'\] are not in the FeatureSpec"):
        TwoTower(ml100k_data.spec, ["user_id", "zip"], ml100k_data.candidate_features)


def test_recipe_fills_the_artifacts_export_builds_on():
    result = get_recipe("two_tower")(
        TrainConfig(
            model="two_tower",
            dataset="synthetic-implicit",
            epochs=1,
            batch_size=4096,
            verbose=0,
            hparams={"embedding_dim": 8, "query_units": 16, "candidate_units": (16,), "history_length": 5},
        )
    )
    figures, artifacts = result.figures, result.artifacts
    assert figures["split"] == "test" and figures["protocol"] == "random-full" and figures["epochs"] == 1
    assert 0.0 <= figures["ndcg@10"] <= 1.0 and figures["seconds_per_epoch"] > 0 and figures["seed"] == 2020
    assert isinstance(artifacts, RetrievalArtifacts)
    split = artifacts.split
    candidates, users = artifacts.candidates, artifacts.user_query_features
    np.testing.assert_array_equal(candidates["item_id"], split.train.item_index.ids)
    assert artifacts.query_features == ["user_id", HISTORY] and sorted(users) == sorted(artifacts.query_features)
    assert users[HISTORY].shape == (split.train.num_users, 5) and users[HISTORY].dtype == np.int64
    assert artifacts.item_titles is None and artifacts.feature_spec.names[0] == "user_id"
    assert result.model.embedding_dim == 8 and result.model.query_units == (16,)
    queries = result.model({k: tf.constant(v[:3]) for k, v in users.items()})
    assert queries.shape == (3, 16) and queries.dtype == tf.float32
