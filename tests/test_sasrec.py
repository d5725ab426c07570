"""SASRec: padding invariance, truncation, OOV, empty-history fallback, objectives, beats popularity."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs.data import make_split
from tfrecs.data.sequence_ids import SequenceIds
from tfrecs.data.synthetic import synthetic_sequences
from tfrecs.evaluation import evaluate_protocol
from tfrecs.layers.item_lookup import ItemLookup
from tfrecs.models import get
from tfrecs.models.base import MissingInputError
from tfrecs.models.popularity import Popularity
from tfrecs.models.sasrec import SASRec
from tfrecs.data.sequence_ids import ITEM_OFFSET
from tfrecs.pipelines import SequenceData
from tfrecs.recipes.sequential_common import sequential_artifacts, sequential_score_fn

ITEMS = np.array([f"m{i}" for i in range(12)])
COUNTS = np.array([5, 1, 9, 0, 3, 3, 7, 2, 2, 8, 1, 4])


def _model(objective="ce", **kwargs):
    tf_keras.utils.set_random_seed(0)
    return SASRec(
        ITEMS, COUNTS, objective=objective, dim=8, max_len=6, num_blocks=2, num_heads=2, dropout=0.0, **kwargs
    )


def _query(model, rows):
    return model({"history": tf.constant(rows)}).numpy()


def test_registered():
    assert get("sasrec") is SASRec


def test_lookup_padding_items_mask_and_oov():
    lookup = ItemLookup(ITEMS)
    np.testing.assert_array_equal(lookup(tf.constant([["", "m0", "m11", "nope"]])).numpy(), [[0, 1, 12, 14]])
    assert lookup.ids == SequenceIds(len(ITEMS))  # the windowing ids: one vocabulary_size
    assert (lookup.ids.mask, lookup.ids.oov, lookup.ids.vocabulary_size) == (13, 14, 15)
    ints = ItemLookup(np.arange(5, dtype=np.int64))  # integer catalogues contain item 0: -1 pads
    np.testing.assert_array_equal(ints(tf.constant([[-1, 0, 4, 99]], tf.int64)).numpy(), [[0, 1, 5, 7]])


def test_left_padding_does_not_change_last_hidden_state():
    model = _model()
    short = _query(model, [["m1", "m2", "m3"]])
    padded = _query(model, [["", "", "", "m1", "m2", "m3"]])
    partly = _query(model, [["", "m1", "m2", "m3"]])
    np.testing.assert_allclose(padded, short, atol=1e-5)
    np.testing.assert_allclose(partly, short, atol=1e-5)


def test_long_history_is_truncated_to_max_len():
    model = _model()
    long = _query(model, [["m9", "m8", "m7", "m1", "m2", "m3", "m4", "m5", "m6"]])
    np.testing.assert_allclose(long, _query(model, [["m1", "m2", "m3", "m4", "m5", "m6"]]), atol=1e-5)


def test_oov_ids_map_to_oov_not_padding():
    model = _model()
    with_oov = _query(model, [["m1", "unknown-id", "m3"]])
    assert np.isfinite(with_oov).all()
    assert np.abs(with_oov - _query(model, [["", "m1", "m3"]])).max() > 1e-4


def test_empty_history_gets_popularity_ranking():
    model = _model()
    query = _query(model, [["", "", ""]])
    candidates = model.candidate_embeddings({"item_id": tf.constant(ITEMS)}).numpy()
    scores = (query @ candidates.T)[0]
    np.testing.assert_allclose(scores, np.log1p(COUNTS), rtol=1e-6)
    assert np.argmax(scores) == np.argmax(COUNTS)


def test_bad_arguments_and_batches_name_the_problem():
    with pytest.raises(ValueError, match="objective"):
        _model(objective="hinge")
    with pytest.raises(ValueError, match="item_counts"):
        SASRec(ITEMS, COUNTS[:3])
    model = _model()
    with pytest.raises(KeyError, match="targets"):
        model.compute_loss({"history": tf.constant([["m1", "m2"]])})
    with pytest.raises(MissingInputError, match="history"):
        model({"items": tf.constant([["m1"]])})
    with pytest.raises(MissingInputError, match="history"):
        model.recommend({"items": tf.constant([["m1"]])}, k=3)


@pytest.fixture(scope="module")
def markov():
    ds = synthetic_sequences(
        num_users=150, num_items=40, min_length=12, max_length=20, successors=2, follow_probability=0.85, seed=3
    )
    return SequenceData.from_split(make_split(ds, "loo"))


def _fit(data, objective, epochs, lr=1e-2):
    tf_keras.utils.set_random_seed(1)
    model = SASRec(
        data.item_ids,
        data.counts,
        objective=objective,
        num_negatives=8,
        dim=16,
        max_len=12,
        num_blocks=1,
        num_heads=1,
        dropout=0.0,
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(lr))
    history = model.fit(data.causal_batches(12, 64, seed=0), epochs=epochs, verbose=0)
    return model, history.history["loss"]


@pytest.fixture(scope="module")
def trained_ce(markov):
    return _fit(markov, "ce", epochs=10)


@pytest.mark.parametrize("objective", ["bce", "ce", "sampled_softmax", "gbce", "uniform_softmax"])
def test_each_objective_decreases_on_markov_chain(markov, trained_ce, objective):
    _, losses = trained_ce if objective == "ce" else _fit(markov, objective, epochs=5)
    assert losses[-1] < 0.9 * losses[0], losses


def test_sasrec_beats_popularity_on_markov_chain(markov, trained_ce):
    model, _ = trained_ce
    score_fn = sequential_score_fn(model, markov.histories("test", 12))
    sasrec = evaluate_protocol(score_fn, markov.split, "loo-full", ks=(10,))["ndcg@10"]
    pop = evaluate_protocol(Popularity.from_dataset(markov.split.train), markov.split, "loo-full", ks=(10,))["ndcg@10"]
    assert sasrec > 1.5 * pop, (sasrec, pop)


def test_scann_export_reloads_in_a_fresh_process_with_the_models_top_items(markov, trained_ce, tmp_path):
    import os
    import sys

    from tfrecs.export import export_retrieval

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
    from load_export_models import load_in_fresh_process

    model, _ = trained_ce
    artifacts = sequential_artifacts(markov, 12)
    histories = markov.histories("test", 12)[:6]
    histories[0] = -1  # an empty history: the export serves the popularity ranking
    export = export_retrieval(
        model,
        artifacts.candidates,
        str(tmp_path / "saved_models"),
        "sasrec",
        feature_spec=artifacts.feature_spec,
        query_features=artifacts.query_features,
        index="scann",
        k=5,
    )
    served = load_in_fresh_process([(export.path, {"history": histories})], str(tmp_path))[0]
    scores = sequential_score_fn(model, histories)(np.arange(len(histories))).numpy()
    top = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    for api in ("tf1", "tf2"):
        np.testing.assert_allclose(
            served[f"{api}/scores"], np.take_along_axis(scores, top, axis=1), rtol=1e-4, atol=1e-5
        )
        # real histories: the model's own top items; the empty one: the most popular (ties in any order)
        np.testing.assert_array_equal(served[f"{api}/item_ids"][1:], markov.item_ids[top[1:]])
    np.testing.assert_allclose(served["tf2/scores"][0], np.sort(np.log1p(markov.counts))[::-1][:5], rtol=1e-5)


def test_untied_output_scores_candidates_with_its_own_table():
    tied, untied = _model(), _model(tie_output=False)
    assert tied.output_embedding is tied.item_embedding
    assert untied.output_embedding is not untied.item_embedding
    table = np.random.default_rng(0).normal(size=untied.output_embedding.embeddings.shape).astype(np.float32)
    untied.output_embedding.embeddings.assign(table)
    items = table[1 : 1 + len(ITEMS)]  # model ids 1..n are the catalogue
    vectors = untied.candidate_embeddings({"item_id": tf.constant(ITEMS)}).numpy()
    np.testing.assert_allclose(vectors[:, :8], items, rtol=1e-6)  # the output table, not the input one
    query = untied({"history": tf.constant([["m1", "m2"]])}).numpy()[:, :8]
    np.testing.assert_allclose(untied.item_logits(tf.constant(query)).numpy(), query @ items.T, rtol=1e-4, atol=1e-5)


def test_gbce_starts_negatives_at_their_prior_and_beats_popularity(markov):
    assert _model("gbce", num_negatives=8).logit_bias.numpy() == pytest.approx(-np.log(8))
    assert _model("bce").logit_bias.numpy() == 0.0 and _model("ce").logit_bias is None
    model, _ = _fit(markov, "gbce", epochs=10)  # with the bias at 0 instead: NDCG below popularity
    score_fn = sequential_score_fn(model, markov.histories("test", 12))
    gbce = evaluate_protocol(score_fn, markov.split, "loo-full", ks=(10,))["ndcg@10"]
    pop = evaluate_protocol(Popularity.from_dataset(markov.split.train), markov.split, "loo-full", ks=(10,))["ndcg@10"]
    assert gbce > 1.4 * pop, (gbce, pop)


def test_uniform_softmax_masks_negatives_equal_to_the_target_and_beats_popularity(markov):
    model = _model("uniform_softmax", num_negatives=12_000)  # each item drawn ~1000 times
    targets = tf.constant([2, 3, 4, 5, 6, 7], tf.int64)
    hidden = 5.0 * tf.cast(model.output_embedding(targets), tf.float32)  # the target scores highest
    hidden = 3.0 * hidden / tf.reduce_max(tf.abs(model.pair_logits(hidden, targets[:, None])))
    loss = float(model._uniform_softmax(hidden, targets))
    logits = model.item_logits(hidden).numpy()  # [6, 12]: column j is item id j + ITEM_OFFSET
    target_columns = targets.numpy() - ITEM_OFFSET
    positive = logits[np.arange(6), target_columns]
    others = np.exp(logits - positive[:, None])
    others[np.arange(6), target_columns] = 0.0
    draws = 12_000 / len(ITEMS)
    expected = np.sum(np.log1p(draws * others.sum(axis=1)))  # the target itself never a negative
    assert loss == pytest.approx(expected, rel=0.03), (loss, expected)
    model, _ = _fit(markov, "uniform_softmax", epochs=10)
    score_fn = sequential_score_fn(model, markov.histories("test", 12))
    sampled = evaluate_protocol(score_fn, markov.split, "loo-full", ks=(10,))["ndcg@10"]
    pop = evaluate_protocol(Popularity.from_dataset(markov.split.train), markov.split, "loo-full", ks=(10,))["ndcg@10"]
    assert sampled > 1.4 * pop, (sampled, pop)


def test_recommend_ranks_the_own_catalogue_in_raw_ids_with_exclusions(markov, trained_ce):
    model, _ = trained_ce
    histories = markov.histories("test", 12)[:4]
    histories[0] = -1  # empty: the most popular items
    ids, scores = model.recommend({"history": tf.constant(histories)}, k=5)
    expected = sequential_score_fn(model, histories)(np.arange(4)).numpy()
    top = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    np.testing.assert_allclose(scores.numpy(), np.take_along_axis(expected, top, axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ids.numpy()[1:], markov.item_ids[top[1:]])
    banned = ids.numpy()[:, :2]
    again, _ = model.recommend({"history": tf.constant(histories)}, k=5, exclude=banned)
    for row, kept in zip(banned, again.numpy()):
        assert not np.isin(kept, row).any()
    np.testing.assert_array_equal(again.numpy()[:, :3], ids.numpy()[:, 2:])


def test_set_overrides_split_into_model_keywords_and_training_settings():
    from tfrecs.recipes.config import split_overrides
    from tfrecs.recipes.sasrec import MODEL_DEFAULTS
    from tfrecs.recipes.sequential_common import SequentialSettings

    kwargs, settings = split_overrides(
        {"objective": "gbce", "dim": 32, "patience": 3, "stride": 10},
        SASRec,
        SequentialSettings(),
        "sasrec",
        MODEL_DEFAULTS,
    )
    assert kwargs == {"dim": 32, "num_heads": 2, "max_len": 50, "objective": "gbce"}
    assert (settings.patience, settings.stride) == (3, 10)
    with pytest.raises(ValueError, match="training settings"):
        split_overrides({"mask_probability": 0.2}, SASRec, SequentialSettings(), "sasrec")
