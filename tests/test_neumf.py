"""NCF / NeuMF: planted structure beats popularity, the paper's fused pre-trained weights, candidate
scoring equals pairwise logits, clear errors."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs import models
from tfrecs.data import make_split, synthetic_implicit
from tfrecs.evaluation import evaluate_protocol
from tfrecs.export.artifacts import RankingArtifacts
from tfrecs.models import GMF, NCFMLP, MissingInputError
from tfrecs.models.neumf import NeuMF
from tfrecs.models.popularity import Popularity
from tfrecs.pipelines import IdData
from tfrecs.recipes import TrainConfig, train


def _tiny():
    split = make_split(synthetic_implicit(num_users=150, num_items=60, interactions_per_user=12, seed=3), "random")
    return IdData.from_split(split)


def _small(data, mode, **kwargs):
    return NeuMF(data.spec, mode=mode, gmf_dim=8, mlp_embedding_dim=8, mlp_units=(16, 8), **kwargs)


def _pairs(data, n=6):
    return {"user_id": tf.constant(data.user_ids[:n]), "item_id": tf.constant(data.item_ids[-n:])}


def test_neumf_trains_on_planted_structure_and_beats_popularity():
    data = _tiny()
    tf_keras.utils.set_random_seed(0)
    model = _small(data, "neumf")
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    model.fit(data.batches(500, num_negatives=4, output="pointwise", sampler="uniform"), epochs=8, verbose=0)
    learned = evaluate_protocol(data.score_fn(model), data.split, "random-full", ks=(10,))
    floor = evaluate_protocol(Popularity.from_dataset(data.split.train), data.split, "random-full", ks=(10,))
    assert learned["ndcg@10"] > 1.3 * floor["ndcg@10"], (learned["ndcg@10"], floor["ndcg@10"])
    assert models.get("neumf") is NeuMF


def test_fused_weights_after_pretraining_are_the_papers_concatenation():
    data = _tiny()
    gmf, mlp = _small(data, "gmf"), _small(data, "mlp")
    for model in (gmf, mlp):  # the recipe test runs real pre-training; the fusion rule is checked here
        model(_pairs(data))
        for weight in model.trainable_weights:  # stand-ins for pre-trained weights
            weight.assign(tf.random.stateless_normal(weight.shape, seed=[len(weight.name), 7]))
    alpha = 0.3
    fused = NeuMF.from_pretrained(gmf, mlp, alpha=alpha)
    kernel, bias = fused.head.get_weights()
    (gmf_kernel, gmf_bias), (mlp_kernel, mlp_bias) = gmf.head.get_weights(), mlp.head.get_weights()
    np.testing.assert_allclose(kernel, np.concatenate([alpha * gmf_kernel, (1 - alpha) * mlp_kernel]), rtol=1e-6)
    np.testing.assert_allclose(bias, alpha * gmf_bias + (1 - alpha) * mlp_bias, rtol=1e-6)
    for key in ("user_id", "item_id"):
        np.testing.assert_array_equal(
            fused.gmf_embeddings[key].get_weights()[0], gmf.gmf_embeddings[key].get_weights()[0]
        )
        np.testing.assert_array_equal(
            fused.mlp_embeddings[key].get_weights()[0], mlp.mlp_embeddings[key].get_weights()[0]
        )
    # the fused prediction is the alpha-mix of the two pre-trained logits
    pairs = _pairs(data)
    np.testing.assert_allclose(
        fused(pairs).numpy(), alpha * gmf(pairs).numpy() + (1 - alpha) * mlp(pairs).numpy(), rtol=1e-5, atol=1e-6
    )


def test_candidate_scores_equal_pairwise_logits():
    data = _tiny()
    model = _small(data, "neumf")
    users, items = data.user_ids[:3], data.item_ids[:5]
    grid = model.score_candidates(tf.constant(users), tf.constant(items)).numpy()
    pairs = {"user_id": tf.constant(np.repeat(users, 5)), "item_id": tf.constant(np.tile(items, 3))}
    np.testing.assert_allclose(grid.reshape(-1), model(pairs).numpy(), rtol=1e-5, atol=1e-6)


def test_bad_input_gets_a_clear_error():
    data = _tiny()
    model = _small(data, "neumf")
    with pytest.raises(MissingInputError, match=r"NeuMF reads input\(s\) \['item_id'\]"):
        model({"user_id": tf.constant(data.user_ids[:2])})
    with pytest.raises(TypeError, match="raw_ids"):  # models read raw ids only
        _small(data, "gmf", raw_ids=False)
    gmf, mlp = _small(data, "gmf"), _small(data, "mlp")
    for model in (gmf, mlp):
        model(_pairs(data))
    with pytest.raises(ValueError, match=r"gmf_dim=16 does not match the pre-trained tower's gmf_dim=8"):
        NeuMF.from_pretrained(gmf, mlp, gmf_dim=16)
    with pytest.raises(ValueError, match="needs a 'gmf' and an 'mlp' model"):
        NeuMF.from_pretrained(mlp, gmf)
    with pytest.raises(ValueError, match="mode='deep' is not an NCF mode"):
        NeuMF(data.spec, mode="deep")


def test_recipe_with_pretraining_runs_end_to_end():
    result = train(
        TrainConfig(
            model="neumf",
            dataset="synthetic-implicit",
            epochs=1,
            verbose=0,
            hparams={"pretrain": True, "max_positives": 2000, "batch_size": 1000, "num_negatives": 2},
        )
    )
    assert result.figures["split"] == "test" and result.figures["epochs"] == 1
    assert result.figures["pretrain_epochs"] == {"gmf": 1, "mlp": 1}
    assert {"hr@10", "mrr@10", "ndcg@20", "seconds_per_epoch", "seed"} <= set(result.figures)
    assert result.model.mode == "neumf"
    assert isinstance(result.artifacts, RankingArtifacts) and result.artifacts.features == ["user_id", "item_id"]


def test_recommend_scores_the_owned_catalogue_and_returns_raw_ids():
    data = _tiny()
    model = _small(data, "neumf")
    users = tf.constant(data.user_ids[:3])
    ids, scores = model.recommend({"user_id": users}, k=5, users_per_chunk=2)
    catalogue = np.asarray(data.spec["item_id"].vocabulary)
    grid = model.score_candidates(users, tf.constant(catalogue)).numpy()
    np.testing.assert_array_equal(ids.numpy(), catalogue[np.argsort(-grid, axis=1, kind="stable")[:, :5]])
    np.testing.assert_allclose(scores.numpy(), -np.sort(-grid, axis=1)[:, :5], rtol=1e-6)
    best = ids.numpy()[:, 0]
    excluded, _ = model.recommend({"user_id": users}, k=5, exclude=[[best[0]], [best[1]], []])
    assert best[0] not in excluded.numpy()[0] and best[1] not in excluded.numpy()[1]
    assert excluded.numpy()[2, 0] == best[2]


def test_pretraining_parts_are_ncf_models_with_a_fixed_mode():
    data = _tiny()
    gmf, mlp = GMF(data.spec, gmf_dim=8), NCFMLP(data.spec, mlp_embedding_dim=8, mlp_units=(16, 8))
    assert (gmf.mode, mlp.mode) == ("gmf", "mlp") and "mode" not in gmf.get_config()
    for model in (gmf, mlp):
        model(_pairs(data))
        assert type(model).from_config(model.get_config()).get_config() == model.get_config()
    fused = NeuMF.from_pretrained(gmf, mlp, alpha=0.5)
    assert type(fused) is NeuMF and fused.mode == "neumf" and fused.mlp_units == (16, 8)
