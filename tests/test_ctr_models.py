"""CTR models: each learns the planted crosses of synthetic CTR data better than logistic regression;
bad input (NaN, unseen ids, missing fields, non-binary labels) gets a clear answer."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs import models
from tfrecs.data import FeatureSpec, FeatureSpecError
from tfrecs.data.synthetic import criteo_feature_spec, synthetic_ctr, synthetic_ctr_world
from tfrecs.evaluation import auc
from tfrecs.models.base import MissingInputError
from tfrecs.models.ctr_base import CTRModel
from tfrecs.models.deepfm import DeepFM
from tfrecs.models.wide_deep import WideDeep
from tfrecs.pipelines.ctr_view import check_binary_labels
from tfrecs.recipes import recipe_names

WORLD = dict(vocabulary_sizes=30, num_crosses=3, cross_dim=4, cross_strength=4.0, seed=3)
N_TRAIN, N_TEST = 8000, 2000
TINY = {
    "deepfm": dict(embedding_dim=8, hidden_units=(32,), dropout=0.0),
    "xdeepfm": dict(embedding_dim=8, cin_layer_sizes=(8, 8), cin_split_half=True, hidden_units=(32,), dropout=0.0),
    "dcn": dict(embedding_dim=8, num_cross_layers=2, hidden_units=(32,)),
    "dcn_v2": dict(embedding_dim=8, num_cross_layers=2, projection_dim=None, structure="stacked", hidden_units=(32,)),
    "wide_deep": dict(embedding_dim=8, hidden_units=(32,), cross_buckets=5000),
}


class LogisticRegression(CTRModel):
    linear = True

    def __init__(self, spec, features=None):
        super().__init__(spec, features, embedding_dim=0)

    def call(self, features, training=False):
        return self.embed(features)[1]


@pytest.fixture(scope="module")
def data():
    world = synthetic_ctr_world(**WORLD)
    rows = synthetic_ctr(N_TRAIN + N_TEST, **WORLD)
    fields = sorted({f for pair in world.crosses for f in pair})
    names = [f"C{f + 1}" for f in fields] + ["I1", "I2"]
    base = criteo_feature_spec()
    spec = FeatureSpec([base[n] for n in names]).fit({n: rows[n][:N_TRAIN] for n in names})
    return rows, names, spec


def _dataset(rows, names, lo, hi):
    return tf.data.Dataset.from_tensor_slices({n: rows[n][lo:hi] for n in names + ["label"]}).batch(500)


def _test_auc(model, rows, names):
    model.compile(tf_keras.optimizers.Adam(0.01))
    model.fit(_dataset(rows, names, 0, N_TRAIN), epochs=3, verbose=0)
    probabilities = model.predict(_dataset(rows, names, N_TRAIN, N_TRAIN + N_TEST), verbose=0).reshape(-1)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()  # predict gives probabilities
    return auc(rows["label"][N_TRAIN:], probabilities)


@pytest.fixture(scope="module")
def logistic_auc(data):
    rows, names, spec = data
    tf_keras.utils.set_random_seed(0)
    return _test_auc(LogisticRegression(spec), rows, names)


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_model_learns_planted_crosses_better_than_logistic_regression(name, data, logistic_auc):
    rows, names, spec = data
    tf_keras.utils.set_random_seed(0)
    model = models.get(name)(spec, names, **TINY[name])
    assert _test_auc(model, rows, names) > logistic_auc + 0.05


def test_models_and_recipes_are_registered_by_name():
    assert {"wide_deep", "deepfm", "xdeepfm", "dcn", "dcn_v2"} <= set(models.names())
    assert {"wide_deep", "deepfm", "xdeepfm", "dcn", "dcn_v2"} <= set(recipe_names())


def test_logits_are_float32_under_mixed_bfloat16(data):
    rows, names, spec = data
    from tfrecs.training import precision_scope

    with precision_scope("mixed_bfloat16"):
        model = models.get("dcn_v2")(
            spec, names, embedding_dim=8, num_cross_layers=1, projection_dim=4, structure="parallel", hidden_units=(16,)
        )
        logits = model({n: rows[n][:4] for n in names})
    assert logits.dtype == tf.float32 and logits.shape == (4, 1)


def test_nan_numeric_is_imputed_with_the_training_mean_and_rejected_when_fitting(data):
    rows, names, spec = data
    model = DeepFM(spec, names, **TINY["deepfm"])
    batch = {n: rows[n][:3] for n in names}
    with_nan = dict(batch, I1=np.array([np.nan, 1.0, 2.0], np.float32))
    at_mean = dict(batch, I1=np.array([spec["I1"].mean, 1.0, 2.0], np.float32))
    np.testing.assert_allclose(model(with_nan).numpy(), model(at_mean).numpy(), rtol=1e-5)
    with pytest.raises(FeatureSpecError, match="'I1'.*NaN"):
        criteo_feature_spec().fit({**rows, "I1": with_nan["I1"].repeat(10)[: len(rows["label"])]})


def test_unseen_categorical_value_reads_the_oov_row(data):
    rows, names, spec = data
    model = DeepFM(spec, names, **TINY["deepfm"])
    batch = {n: rows[n][:2] for n in names}
    first = names[0]
    unseen = dict(batch, **{first: np.array([10_001, 10_002], np.int64)})
    vectors = model.embedding(unseen)[first].numpy()
    np.testing.assert_array_equal(vectors[0], vectors[1])
    np.testing.assert_array_equal(vectors[0], model.embedding.table.embeddings.numpy()[model.embedding._offsets[first]])


def test_missing_field_is_named(data):
    rows, names, spec = data
    model = DeepFM(spec, names, **TINY["deepfm"])
    with pytest.raises(MissingInputError, match=r"DeepFM reads input\(s\) \['I2'\], which the batch lacks"):
        model({n: rows[n][:2] for n in names if n != "I2"})


def test_out_of_range_pre_indexed_id_is_named(data):
    rows, names, spec = data
    model = DeepFM(spec, names, **TINY["deepfm"], raw_ids=False)
    batch = {n: rows[n][:2] for n in names}
    batch[names[1]] = np.array([0, 10_000], np.int64)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"feature '{names[1]}': index outside"):
        model(batch)


def test_label_outside_zero_one_is_rejected(data):
    rows, names, spec = data
    model = DeepFM(spec, names, **TINY["deepfm"])
    model.compile(tf_keras.optimizers.Adam(0.01))
    batch = {n: rows[n][:4] for n in names + ["label"]}
    batch["label"] = np.array([0.0, 1.0, 2.0, 1.0], np.float32)
    not_binary = r"task label: its labels \(feature label\) must hold only 0 and 1"
    with pytest.raises(tf.errors.InvalidArgumentError, match=not_binary):
        model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(4), verbose=0)
    with pytest.raises(ValueError, match="rating: a binary task needs labels in \\{0, 1\\}; found \\[2.0\\]"):
        check_binary_labels([0, 1, 2], "rating")


def test_wide_deep_cross_of_a_non_categorical_feature_is_named(data):
    rows, names, spec = data
    with pytest.raises(ValueError, match="cross \\('I1', 'C1'\\)"):
        WideDeep(spec, names, crosses=(("I1", "C1"),))


def test_predict_is_the_sigmoid_of_the_logits_and_summary_counts_the_fused_table(data):
    rows, names, spec = data
    model = DeepFM(spec, names, **TINY["deepfm"])
    batch = {n: rows[n][:6] for n in names}
    logits = model(batch).numpy()
    np.testing.assert_allclose(model.predict(batch, verbose=0), 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-7)
    lines = []
    model.summary(print_fn=lines.append)
    row = next(line for line in lines if "feature_embedding" in line)
    assert int(row.split()[-1]) == model.embedding.table.embeddings.shape.num_elements()


def test_ctr_view_of_ml100k_has_the_published_rows_labels_and_histories(ml100k):
    from tfrecs.data import make_split
    from tfrecs.data.histories import event_histories
    from tfrecs.pipelines.ctr_view import CTR_SPLIT, load_ctr_data

    view = load_ctr_data(make_split(ml100k, CTR_SPLIT, seed=2020), history_length=5, rating=True)
    assert {part: len(columns["label"]) for part, columns in view.columns.items()} == {
        "train": 80_000,
        "valid": 10_000,
        "test": 10_000,
    }
    labels = np.concatenate([columns["label"] for columns in view.columns.values()])
    assert round(float(labels.mean()), 4) == 0.5537
    assert view.features == view.spec.names + ["history"] and view.labels == ["label", "rating"]
    np.testing.assert_array_equal(view.columns["test"]["label"], view.columns["test"]["rating"] >= 4)
    # Histories come from the whole log (train, valid, test rows), row-aligned with each part.
    parts = [view.split.part(name).interactions for name in ("train", "valid", "test")]
    columns = (np.concatenate([part[key] for part in parts]) for key in ("user_id", "item_id", "timestamp"))
    whole = event_histories(*columns, length=5)
    np.testing.assert_array_equal(view.columns["test"]["history"], whole[-10_000:])
    np.testing.assert_array_equal(view.columns["train"]["history"], whole[:80_000])
    batch = next(iter(view.dataset("test", 8)))
    assert set(batch) == set(view.features) | {"label", "rating"} and batch["history"].shape == (8, 5)
