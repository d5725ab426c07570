"""BERT4Rec: Cloze masking rate, raw-id training batches, bidirectional query, loss decreases."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs.data import make_split
from tfrecs.data.synthetic import synthetic_sequences
from tfrecs.models import get
from tfrecs.models.bert4rec import BERT4Rec
from tfrecs.pipelines import SequenceData

ITEMS = np.array([f"m{i}" for i in range(12)])
COUNTS = np.arange(12)


@pytest.fixture(scope="module")
def data():
    ds = synthetic_sequences(
        num_users=400, num_items=40, min_length=20, max_length=30, successors=2, follow_probability=0.85, seed=5
    )
    return SequenceData.from_split(make_split(ds, "loo"))


def _model(**kwargs):
    tf_keras.utils.set_random_seed(0)
    return BERT4Rec(ITEMS, COUNTS, dim=8, max_len=6, num_blocks=1, num_heads=2, dropout=0.0, **kwargs)


def test_registered():
    assert get("bert4rec") is BERT4Rec


def test_cloze_masking_rate_on_a_large_batch(data):
    batch = next(iter(data.cloze_batches(max_len=20, batch_size=4096, mask_probability=0.3, seed=0)))
    real = batch["history"].numpy() != data.raw_table[0]
    chosen = batch["label_mask"].numpy() > 0
    assert not (chosen & ~real).any()  # padding is never a label
    rate = chosen.sum() / real.sum()
    assert abs(rate - 0.3) < 0.015, rate  # ~11k real positions: 3 sigma is about 0.013


def test_training_histories_are_raw_and_unmasked(data):
    batch = next(iter(data.cloze_batches(max_len=20, batch_size=8, mask_probability=0.5, seed=0)))
    values = set(batch["history"].numpy().ravel().tolist())
    assert values <= set(data.item_ids.tolist()) | {-1}  # raw ids (integer catalogue pads with -1)


def test_query_sees_the_last_item_through_the_appended_mask():
    model = _model()
    a = model({"history": tf.constant([["m1", "m2", "m3"]])}).numpy()
    b = model({"history": tf.constant([["m1", "m2", "m9"]])}).numpy()
    padded = model({"history": tf.constant([["", "", "m1", "m2", "m3"]])}).numpy()
    assert np.abs(a - b).max() > 1e-4
    np.testing.assert_allclose(padded, a, atol=1e-5)


def test_empty_history_gets_popularity_and_missing_labels_are_named():
    model = _model()
    query = model({"history": tf.constant([["", ""]])}).numpy()
    candidates = model.candidate_embeddings({"item_id": tf.constant(ITEMS)}).numpy()
    np.testing.assert_allclose((query @ candidates.T)[0], np.log1p(COUNTS), rtol=1e-6)
    with pytest.raises(KeyError, match="label_mask"):
        model.compute_loss({"history": tf.constant([["m1", "m2"]])})


def test_cloze_loss_decreases_on_markov_chain(data):
    tf_keras.utils.set_random_seed(1)
    model = BERT4Rec(data.item_ids, data.counts, dim=16, max_len=12, num_blocks=1, num_heads=1, dropout=0.0)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    losses = model.fit(data.cloze_batches(12, 64, mask_probability=0.3, seed=0), epochs=6, verbose=0).history["loss"]
    assert losses[-1] < 0.9 * losses[0], losses


def test_the_model_masks_once_where_the_pipeline_chose(data):
    """The batch carries unmasked items and positions; the loss is the CE at exactly those positions."""
    tf_keras.utils.set_random_seed(2)
    model = BERT4Rec(data.item_ids, data.counts, dim=8, max_len=8, num_blocks=1, num_heads=2, dropout=0.0)
    batch = next(iter(data.cloze_batches(max_len=8, batch_size=16, mask_probability=0.3, seed=1)))
    ids = model.lookup(batch["history"])
    chosen = batch["label_mask"].numpy() > 0
    assert (ids.numpy()[chosen] != model.lookup.ids.mask).all()  # nothing masked upstream
    masked = tf.where(chosen, tf.constant(model.lookup.ids.mask, tf.int64), ids)
    logits = model.item_logits(tf.boolean_mask(model.head(model.encode(masked)), chosen)).numpy()
    labels = ids.numpy()[chosen] - 1
    expected = np.mean(np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(labels)), labels])
    assert float(model.compute_loss(batch)) == pytest.approx(expected, rel=1e-4)  # mean over masked positions


def test_recommend_answers_in_raw_ids_and_names_a_missing_history():
    from tfrecs.models import MissingInputError

    model = _model()
    ids, scores = model.recommend({"history": tf.constant([["m1", "m2"], ["", ""]])}, k=3, exclude=[["m5"], []])
    assert ids.dtype == tf.string and set(ids.numpy().ravel().astype(str)) <= set(ITEMS)
    np.testing.assert_array_equal(ids.numpy()[1].astype(str), ITEMS[np.argsort(-COUNTS, kind="stable")[:3]])
    assert "m5" not in ids.numpy()[0].astype(str)
    with pytest.raises(MissingInputError, match="history"):
        model.recommend({"item_id": tf.constant(["m1"])}, k=3)
