"""PinSage: random-walk neighbourhoods (hand-built graph), the tf.data producer and its curriculum,
learning a planted task, save / load, the offline embedding job and the export, clear errors."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs import models
from tfrecs.core.errors import InputError
from tfrecs.data import make_split, synthetic_implicit
from tfrecs.data.random_walks import (
    HARD_NEGATIVES,
    BipartiteGraph,
    EmptyGraphError,
    RandomWalkSampler,
    multi_hop,
    top_visited,
)
from tfrecs.evaluation import evaluate_protocol
from tfrecs.export.artifacts import RetrievalArtifacts
from tfrecs.models import PinSage
from tfrecs.models.popularity import Popularity
from tfrecs.pipelines.pinsage_view import PinSageData, hard_negatives_at
from tfrecs.pipelines.transforms import epoch_key

# users u0: {i0, i1}; u1: {i0, i2}; u2: {i0, i2}; u3: {i3, i4}. From i0 a one-hop walk picks a
# user uniformly, then an item of theirs: i1 with probability 1/6, i2 with 2/6 (i0 itself is
# not counted), so the normalised visit counts tend to i2: 2/3, i1: 1/3.
USERS = np.array([0, 0, 1, 1, 2, 2, 3, 3])
ITEMS = np.array([0, 1, 0, 2, 0, 2, 3, 4])


def _graph():
    return BipartiteGraph(USERS, ITEMS, num_users=4, num_items=6)  # item 5 is isolated


def _two_hop(item):
    users = set(USERS[ITEMS == item])
    return set(ITEMS[np.isin(USERS, list(users))]) - {item}


def test_walk_neighbourhoods_are_two_hop_neighbours_weighted_by_visits_and_reproducible():
    sampler = RandomWalkSampler(_graph(), num_walks=6000, walk_length=1, num_neighbors=3, seed=5)
    neighbors, weights = sampler.item_neighborhoods(np.arange(6))
    for item in range(6):
        found = set(neighbors[item][weights[item] > 0])
        assert found == _two_hop(item), (item, found)
        assert weights[item].sum() == pytest.approx(1.0 if found else 0.0, abs=1e-6)
    assert list(neighbors[0][:2]) == [2, 1] and neighbors[0][2] == -1  # most visited first, padding last
    np.testing.assert_allclose(weights[0][:2], [2 / 3, 1 / 3], atol=0.03)
    again = sampler.item_neighborhoods(np.arange(6))
    np.testing.assert_array_equal(again[0], neighbors)
    np.testing.assert_array_equal(again[1], weights)
    small = RandomWalkSampler(_graph(), num_walks=4, walk_length=2, num_neighbors=3)
    draws = {tuple(small.item_neighborhoods([0], seed=s)[1][0].round(3)) for s in range(20)}
    assert len(draws) > 1  # the seed matters
    np.testing.assert_array_equal(small.item_neighborhoods([0], seed=3)[1], small.item_neighborhoods([0], seed=3)[1])
    # a user's walk starts on the user's own items
    user_neighbors, user_weights = sampler.user_neighborhoods([3])
    assert set(user_neighbors[0][user_weights[0] > 0]) == {3, 4}
    # the sampled computation graph: hop 2 holds the neighbours of each hop-1 node, in order
    (n1, _), (n2, w2) = multi_hop(sampler, np.array([0]), 2, seed=1)
    assert list(n1[0]) == [2, 1, -1]
    assert set(n2[0][:3][w2[0][:3] > 0]) == _two_hop(2) and set(n2[0][3:6][w2[0][3:6] > 0]) == _two_hop(1)
    assert (n2[0][6:] == -1).all()  # a padded parent has padded children


def test_top_visited_counts_and_normalises():
    items, weights = top_visited(np.array([0, 0, 0, 1]), np.array([4, 4, 2, 3]), 3, 2, 5)
    np.testing.assert_array_equal(items, [[4, 2], [3, -1], [-1, -1]])
    np.testing.assert_allclose(weights, [[2 / 3, 1 / 3], [1, 0], [0, 0]], rtol=1e-6)


def test_hard_negatives_are_never_the_users_items_when_walks_reach_others():
    sampler = RandomWalkSampler(_graph(), num_walks=200, walk_length=3, num_neighbors=3, seed=1)
    hard = sampler.hard_negatives(np.array([0, 1]), num=5, ranks=(0, 3), seed=2)
    assert set(hard[0]) <= {2} and set(hard[1]) <= {1}


def test_bad_input_names_the_argument():
    with pytest.raises(EmptyGraphError, match="empty"):
        BipartiteGraph(np.array([], np.int64), np.array([], np.int64), 2, 2)
    with pytest.raises(InputError, match="item_indices holds 7"):
        BipartiteGraph(np.array([0]), np.array([7]), 2, 2)
    with pytest.raises(InputError, match="walk_length must be an integer >= 1"):
        RandomWalkSampler(_graph(), num_walks=2, walk_length=0, num_neighbors=2)
    with pytest.raises(InputError, match="num_walks"):
        RandomWalkSampler(_graph(), num_walks=0, walk_length=1, num_neighbors=2)
    with pytest.raises(InputError, match="items holds 9, which is not a node"):
        RandomWalkSampler(_graph(), 2, 1, 2).item_neighborhoods([9])
    with pytest.raises(InputError, match="users holds -1"):
        RandomWalkSampler(_graph(), 2, 1, 2).user_neighborhoods([-1])
    with pytest.raises(InputError, match="ranks must be a window"):
        RandomWalkSampler(_graph(), 2, 1, 2).hard_negatives([0], 1, (5, 5))


# -- model ---------------------------------------------------------------------------------------------
def _data():
    split = make_split(synthetic_implicit(num_users=150, num_items=60, interactions_per_user=12, seed=3), "random")
    return PinSageData.from_split(split, num_walks=8, walk_length=2, num_neighbors=4, seed=1)


def _model(data, **kwargs):
    train = data.split.train
    genres = np.eye(3, dtype=np.float32)[np.arange(len(data.item_ids)) % 3]  # planted item features
    options = dict(num_neighbors=4, num_user_neighbors=8, num_layers=2, embedding_dim=16, **kwargs)
    return PinSage.from_interactions(
        data.spec,
        train.interactions["user_id"],
        train.interactions["item_id"],
        item_features=genres,
        feature_item_ids=data.item_ids,
        num_walks=16,
        **options,
    )


def _batches(data, **kwargs):
    options = dict(num_layers=2, num_user_neighbors=8, num_hard_negatives=2, hard_negative_ranks=(2, 20), seed=7)
    return data.batches(128, **{**options, **kwargs})


def test_the_producer_is_seeded_keyed_by_epoch_and_adds_hard_negatives_by_curriculum():
    data = _data()
    first = next(iter(_batches(data)))
    again = next(iter(_batches(data)))
    for key in first:
        np.testing.assert_array_equal(first[key].numpy(), again[key].numpy(), err_msg=key)
    assert first["item_neighbors_2"].shape == (128, 16) and first["user_neighbors"].shape == (128, 8)
    assert first["item_id"].dtype == tf.int64  # raw ids, as every model reads them
    assert (first[HARD_NEGATIVES].numpy() == -1).all()  # epoch 0: no hard negative yet
    assert [hard_negatives_at(e, 1, 2) for e in range(4)] == [0, 1, 2, 2]
    ds = _batches(data)
    epoch_key(ds).pin(2)
    later = next(iter(ds))[HARD_NEGATIVES].numpy()
    assert (later != -1).all() and set(later.reshape(-1)) <= set(data.item_ids)


def test_learns_a_planted_task_saves_reloads_and_exports_the_same_answers(tmp_path):
    from tfrecs.export import export_trained
    from tfrecs.recipes.config import TrainResult

    data = _data()
    tf_keras.utils.set_random_seed(0)
    model = _model(data, temperature=0.1)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.03))
    batches = _batches(data, curriculum_start=1)
    model.build_from_batch(next(iter(batches)))  # as tfrecs.training.fit does: records the inputs for reloads
    model.fit(batches, epochs=8, verbose=0)
    learned = evaluate_protocol(data.score_fn(model), data.split, "random-full", ks=(10,))
    floor = evaluate_protocol(Popularity.from_dataset(data.split.train), data.split, "random-full", ks=(10,))
    assert learned["ndcg@10"] > 1.2 * floor["ndcg@10"], (learned["ndcg@10"], floor["ndcg@10"])
    assert models.get("pinsage") is PinSage

    users = {"user_id": tf.constant(data.user_ids[:6])}
    items = {"item_id": tf.constant(data.item_ids)}
    path = str(tmp_path / "pinsage.keras")
    model.save(path)
    reloaded = tf_keras.models.load_model(path)
    assert type(reloaded) is PinSage
    np.testing.assert_allclose(reloaded(users).numpy(), model(users).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        reloaded.candidate_embeddings(items).numpy(), model.candidate_embeddings(items).numpy(), rtol=1e-5, atol=1e-6
    )

    # the offline job: every item in batches, the same vectors as the candidate tower
    table = model.embed_items(batch_size=7).numpy()
    rows = data.spec.lookup_layer("item_id")(items["item_id"]).numpy()
    np.testing.assert_allclose(table[rows], model.candidate_embeddings(items).numpy(), rtol=1e-5, atol=1e-6)

    artifacts = RetrievalArtifacts(
        feature_spec=data.spec,
        query_features=["user_id"],
        candidates={"item_id": data.item_ids},
        split=data.split,
        user_query_features={"user_id": data.user_ids},
    )
    export = export_trained(
        TrainResult(model, {}, artifacts=artifacts), str(tmp_path), "pinsage", index="brute_force", k=5, warmup=False
    )
    answer = tf.saved_model.load(export.path).signatures["serving_default"](
        user_id=users["user_id"], exclude_item_ids=tf.zeros([6, 0], tf.int64)
    )
    expected, _ = model.recommend(users, k=5)
    np.testing.assert_array_equal(answer["item_ids"].numpy(), expected.numpy())


def test_model_arguments_are_checked_and_config_holds_no_graph():
    data = _data()
    with pytest.raises(InputError, match="num_layers must be >= 1"):
        PinSage(data.spec, num_layers=0)
    with pytest.raises(InputError, match="temperature must be > 0"):
        PinSage(data.spec, temperature=0)
    with pytest.raises(EmptyGraphError):
        PinSage.from_interactions(data.spec, np.array([], np.int64), np.array([], np.int64))
    with pytest.raises(InputError, match=r"item_features must be \[items, 2\]"):
        PinSage(data.spec, num_item_features=2).set_item_features(data.item_ids, np.ones((len(data.item_ids), 3)))
    model = _model(data)
    config = model.get_config()
    assert len(str(config)) < 5000 and config["num_layers"] == 2
    clone = PinSage.from_config(config)
    users = {"user_id": tf.constant(data.user_ids[:3])}
    items = {"item_id": tf.constant(data.item_ids[:4])}
    for built in (model, clone):
        built(users), built.candidate_embeddings(items)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(users).numpy(), model(users).numpy(), rtol=1e-6)
    np.testing.assert_allclose(clone.candidate_embeddings(items).numpy(), model.candidate_embeddings(items).numpy())
