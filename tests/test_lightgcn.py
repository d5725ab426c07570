"""LightGCN: hand-computed propagation, one propagation per step, planted structure beats popularity,
exported towers, clear errors."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs import models
from tfrecs.data import make_split, synthetic_implicit
from tfrecs.evaluation import evaluate_protocol
from tfrecs.export.artifacts import RetrievalArtifacts
from tfrecs.layers.graph_propagation import EmptyGraphError, GraphPropagation, normalized_adjacency
from tfrecs.models import MissingInputError
from tfrecs.models.lightgcn import LightGCN
from tfrecs.models.popularity import Popularity
from tfrecs.pipelines import IdData
from tfrecs.recipes import TrainConfig, train


def test_propagation_on_a_three_node_graph_equals_the_hand_computed_normalised_sums():
    # users u0, u1 both interacted with item i0: nodes [u0, u1, i0]; deg(u0)=deg(u1)=1, deg(i0)=2.
    adjacency = normalized_adjacency(np.array([0, 1]), np.array([0, 0]), num_users=2, num_items=1)
    s = 1 / np.sqrt(2.0)
    np.testing.assert_allclose(tf.sparse.to_dense(adjacency).numpy(), [[0, 0, s], [0, 0, s], [s, s, 0]], rtol=1e-6)
    e0 = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]], np.float32)
    e1 = np.array([[2 * s, 3 * s], [2 * s, 3 * s], [s, s]])  # u <- i0 / sqrt2; i0 <- (u0 + u1) / sqrt2
    e2 = np.array([[0.5, 0.5], [0.5, 0.5], [2.0, 3.0]])  # u <- e1[i0] / sqrt2; i0 <- 2 * e1[u] / sqrt2
    out = GraphPropagation(adjacency, num_layers=2)(tf.constant(e0)).numpy()
    np.testing.assert_allclose(out, (e0 + e1 + e2) / 3, rtol=1e-6)
    np.testing.assert_allclose(GraphPropagation(adjacency, num_layers=0)(tf.constant(e0)).numpy(), e0)
    # the symmetric shortcut gradient equals the dense one: d sum(w * mean_k A^k E) / dE = mean_k A^k w
    table, weights = tf.Variable(e0), tf.constant([[1.0, -2.0], [0.5, 3.0], [-1.0, 1.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(weights * GraphPropagation(adjacency, num_layers=2)(table))
    dense = tf.sparse.to_dense(adjacency).numpy()
    expected = (weights + dense @ weights + dense @ dense @ weights) / 3
    np.testing.assert_allclose(tape.gradient(loss, table).numpy(), expected, rtol=1e-5)


def test_duplicate_interactions_count_once():
    once = normalized_adjacency(np.array([0, 1]), np.array([0, 0]), 2, 1)
    twice = normalized_adjacency(np.array([0, 0, 1]), np.array([0, 0, 0]), 2, 1)
    np.testing.assert_allclose(tf.sparse.to_dense(once).numpy(), tf.sparse.to_dense(twice).numpy())


def _tiny():
    split = make_split(synthetic_implicit(num_users=150, num_items=60, interactions_per_user=12, seed=3), "random")
    return IdData.from_split(split)


def _model(data, loss="bpr", **kwargs):
    train_part = data.split.train
    return LightGCN.from_interactions(
        data.spec,
        train_part.interactions["user_id"],
        train_part.interactions["item_id"],
        embedding_dim=16,
        num_layers=2,
        objective=loss,
        **kwargs,
    )


@pytest.mark.parametrize("loss", ["bpr", "softmax"])
def test_the_graph_is_propagated_once_per_step_not_per_example(loss):
    data = _tiny()
    model = _model(data, loss=loss)
    batch = next(iter(data.batches(64, 1, "pairwise") if loss == "bpr" else data.positive_batches(64)))
    graph = tf.function(model.compute_loss).get_concrete_function(batch, training=True).graph
    matmuls = [op for op in graph.get_operations() if op.type == "SparseMatrixMatMul"]
    assert len(matmuls) == 2  # num_layers, whatever the batch size


@pytest.mark.parametrize("loss", ["bpr", "softmax", "full_softmax"])
def test_trains_on_planted_structure_and_beats_popularity(loss):
    data = _tiny()
    tf_keras.utils.set_random_seed(0)
    model = _model(data, loss=loss, l2=1e-5)
    model.compile(optimizer=tf_keras.optimizers.Adam(0.05))
    batches = data.batches(256, 1, "pairwise") if loss == "bpr" else data.positive_batches(256)
    model.fit(batches, epochs=6, verbose=0)
    learned = evaluate_protocol(data.score_fn(model), data.split, "random-full", ks=(10,))
    floor = evaluate_protocol(Popularity.from_dataset(data.split.train), data.split, "random-full", ks=(10,))
    assert learned["ndcg@10"] > 1.3 * floor["ndcg@10"], (learned["ndcg@10"], floor["ndcg@10"])


def test_full_softmax_is_the_cross_entropy_over_every_item_row():
    data = _tiny()
    model = _model(data, loss="full_softmax", l2=0.0, temperature=0.5)
    batch = next(iter(data.positive_batches(32)))
    users, items = model.final_embeddings()
    logits = model.compute_query_embeddings(batch).numpy() @ items.numpy().T / 0.5
    rows = model.item_lookup(batch["item_id"]).numpy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    expected = -(shifted[np.arange(len(rows)), rows] - np.log(np.exp(shifted).sum(axis=1))).mean()
    assert float(model.compute_loss(batch, training=True)) == pytest.approx(expected, rel=1e-5)


def test_exported_towers_serve_the_final_embeddings_for_raw_ids():
    data = _tiny()
    model = _model(data)
    query_tower, candidate_tower = model.export_towers()
    users = {"user_id": data.user_ids[:5]}
    items = {"item_id": data.item_ids[:7]}
    np.testing.assert_allclose(query_tower(users).numpy(), model.compute_query_embeddings(users).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        candidate_tower(items).numpy(), model.compute_candidate_embeddings(items).numpy(), rtol=1e-6
    )
    assert query_tower.trainable_weights == [] and models.get("lightgcn") is LightGCN
    unknown = query_tower({"user_id": np.array([10**9])}).numpy()  # OOV bucket: an isolated node
    np.testing.assert_allclose(unknown[0], model.ego_embeddings.numpy()[0] / 3, rtol=1e-6)


def test_bad_input_gets_a_clear_error():
    data = _tiny()
    with pytest.raises(EmptyGraphError, match="the interaction graph is empty"):
        LightGCN.from_interactions(data.spec, np.array([], np.int64), np.array([], np.int64))
    model = _model(data)
    with pytest.raises(MissingInputError, match=r"reads input\(s\) \['user_id'\]"):
        model.compute_query_embeddings({"uid": tf.constant([1], tf.int64)})
    with pytest.raises(MissingInputError, match=r"reads input\(s\) \['negative_item_id'\]"):
        model.compute_loss({"user_id": tf.constant([1], tf.int64), "item_id": tf.constant([1], tf.int64)})
    with pytest.raises(ValueError, match="objective='hinge' is not a LightGCN objective"):
        _model(data, loss="hinge")
    with pytest.raises(ValueError, match=r"have 2 distinct \(user, item\) pairs but .* num_edges=3"):
        LightGCN(data.spec, num_edges=3).set_graph(data.user_ids[:2], data.item_ids[:2])


def test_the_graph_is_weights_not_config_and_survives_a_rebuild():
    data = _tiny()
    model = _model(data)
    users = {"user_id": tf.constant(data.user_ids[:5])}
    config = model.get_config()
    train = data.split.train
    assert config["num_edges"] == len(np.unique(train.user_indices() * 1000 + train.item_indices()))
    assert len(str(config)) < 5000  # vocabularies and sizes, no edge list
    clone = LightGCN.from_config(config)
    assert not np.allclose(clone(users).numpy(), model(users).numpy())  # zero graph, other embeddings
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(users).numpy(), model(users).numpy(), rtol=1e-6)


def test_recommend_ranks_the_known_items_with_the_final_embeddings():
    data = _tiny()
    model = _model(data)
    users = {"user_id": tf.constant(data.user_ids[:3])}
    ids, scores = model.recommend(users, k=4, exclude=[[data.item_ids[0]], [], []])
    user_table, item_table = model.final_embeddings()
    catalogue = np.asarray(data.spec["item_id"].vocabulary)
    rows = data.spec.lookup_layer("item_id")(catalogue).numpy()
    grid = model(users).numpy() @ item_table.numpy()[rows].T
    grid[0, catalogue == data.item_ids[0]] = -np.inf
    np.testing.assert_array_equal(ids.numpy(), catalogue[np.argsort(-grid, axis=1, kind="stable")[:, :4]])
    np.testing.assert_allclose(scores.numpy(), -np.sort(-grid, axis=1)[:, :4], rtol=1e-5)


def test_recipe_runs_from_the_command_line_path_with_softmax():
    result = train(
        TrainConfig(
            model="lightgcn",
            dataset="synthetic-implicit",
            epochs=1,
            verbose=0,
            hparams={"objective": "softmax", "max_positives": 3000, "embedding_dim": 8},
        )
    )
    assert result.figures["split"] == "test" and result.figures["epochs"] == 1
    assert result.figures["objective"] == "softmax" and result.model.embedding_dim == 8
    assert {"ndcg@10", "recall@20", "seconds_per_epoch", "seed"} <= set(result.figures)
    artifacts = result.artifacts
    assert isinstance(artifacts, RetrievalArtifacts) and artifacts.query_features == ["user_id"]
    assert len(artifacts.candidates["item_id"]) == 500 and set(artifacts.user_query_features) == {"user_id"}


def test_export_serves_frozen_final_tables_without_the_graph(tmp_path):
    from tfrecs.export import export_trained
    from tfrecs.recipes.config import TrainResult

    data = _tiny()
    model = _model(data)
    artifacts = RetrievalArtifacts(
        feature_spec=data.spec,
        query_features=["user_id"],
        candidates={"item_id": data.item_ids},
        split=data.split,
        user_query_features={"user_id": data.user_ids},
    )
    export = export_trained(
        TrainResult(model, {}, artifacts=artifacts), str(tmp_path), "lightgcn", index="brute_force", k=5, warmup=False
    )
    loaded = tf.saved_model.load(export.path)
    with open(f"{export.path}/saved_model.pb", "rb") as handle:
        saved = handle.read()
    for sparse_op in (b"SparseTensorDenseMatMul", b"SparseMatrixMatMul", b"SparseTensorToCSRSparseMatrix"):
        assert sparse_op not in saved  # no propagation over the graph at serving time
    answer = loaded.signatures["serving_default"](
        user_id=tf.constant(data.user_ids[:2]), exclude_item_ids=tf.zeros([2, 0], tf.int64)
    )
    expected, _ = model.recommend({"user_id": tf.constant(data.user_ids[:2])}, k=5)
    known = set(np.asarray(data.spec["item_id"].vocabulary).astype(str))
    got = answer["item_ids"].numpy().astype(str)
    assert set(got.reshape(-1)) <= known | set(np.asarray(data.item_ids).astype(str))
    np.testing.assert_array_equal(got[:, :3], expected.numpy().astype(str)[:, :3])
