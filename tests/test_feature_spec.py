"""FeatureSpec: vocabularies from training data only, OOV, JSON round trip, clear errors."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.data import Feature, FeatureSpec, FeatureSpecError, joined_columns, make_split, object_column


def _columns():
    return {
        "user_id": np.array(["u1", "u2", "u1", "u3"]),
        "item_id": np.array([7, 8, 7, 9], dtype=np.int64),
        "age": np.array([20.0, 30.0, 20.0, 50.0], dtype=np.float32),
        "genres": object_column([("Drama",), ("Comedy", "Drama"), ("Drama",), ()]),
        "title": np.array(["Heat!", "The Heat", "Heat", "Up"]),
    }


def _spec():
    return FeatureSpec(
        [
            Feature("user_id", "categorical"),
            Feature("item_id", "categorical", dtype="int64"),
            Feature("age", "numeric"),
            Feature("genres", "sequence", max_length=3),
            Feature("title", "text"),
        ]
    )


def test_fit_learns_vocabularies_by_frequency_and_statistics():
    spec = _spec().fit(_columns())
    assert spec["user_id"].vocabulary == ["u1", "u2", "u3"]
    assert spec["item_id"].vocabulary == [7, 8, 9]
    assert spec["genres"].vocabulary == ["Drama", "Comedy"]
    assert spec["title"].vocabulary == ["heat", "the", "up"]
    assert spec["age"].mean == pytest.approx(30.0) and spec["age"].std == pytest.approx(np.std([20, 30, 20, 50]))
    assert spec["user_id"].vocabulary_size == 4 and spec["genres"].vocabulary_size == 4  # + OOV (+ padding)


def test_lookup_layers_map_known_values_and_send_unknown_ones_to_oov():
    spec = _spec().fit(_columns())
    users = spec.lookup_layer("user_id")(tf.constant(["u2", "nobody"])).numpy()
    assert users.tolist() == [2, 0]
    items = spec.lookup_layer("item_id")(tf.constant([9, 12345], dtype=tf.int64)).numpy()
    assert items.tolist() == [3, 0]
    genres = spec.lookup_layer("genres")(tf.constant([["Drama", "Western", ""]])).numpy()
    assert genres.tolist() == [[2, 1, 0]]  # padding 0, OOV 1, known from 2
    normalised = spec.normalization_layer("age")(tf.constant([[30.0]])).numpy()
    assert normalised[0, 0] == pytest.approx(0.0, abs=1e-5)
    tokens = spec.text_vectorization_layer("title")(tf.constant(["The HEAT."])).numpy()
    assert tokens[0, :2].tolist() == [3, 2]  # 0 padding, 1 OOV, then heat=2, the=3


def test_vocabularies_come_from_the_training_split_only(ml100k):
    split = make_split(ml100k, "loo")
    spec = FeatureSpec([Feature("item_id", "categorical")]).fit(joined_columns(split.train))
    train_items = set(split.train.interactions["item_id"].tolist())
    test_only = sorted(set(split.test.interactions["item_id"].tolist()) - train_items)
    assert test_only, "ML-100K's LOO test has items never seen in training"
    assert set(spec["item_id"].vocabulary) == train_items
    indices = spec.lookup_layer("item_id")(tf.constant(test_only)).numpy()
    assert (indices == 0).all()


def test_json_round_trip(tmp_path):
    spec = _spec().fit(_columns())
    spec.save(str(tmp_path / "feature_spec.json"))
    loaded = FeatureSpec.load(str(tmp_path / "feature_spec.json"))
    assert [vars(f) for f in loaded] == [vars(f) for f in spec]
    assert loaded.lookup_layer("item_id")(tf.constant([8], dtype=tf.int64)).numpy().tolist() == [2]


def test_a_spec_that_does_not_match_the_data_names_the_feature(tmp_path):
    columns = _columns()
    with pytest.raises(FeatureSpecError, match="feature 'age' is missing"):
        _spec().fit({k: v for k, v in columns.items() if k != "age"})
    with pytest.raises(FeatureSpecError, match="feature 'item_id': expected int64 ids, got dtype <U"):
        _spec().fit({**columns, "item_id": columns["item_id"].astype(str)})
    with pytest.raises(FeatureSpecError, match=r"feature 'age': 1 value\(s\) are NaN"):
        _spec().fit({**columns, "age": np.array([1.0, np.nan, 2.0, 3.0], dtype=np.float32)})
    with pytest.raises(FeatureSpecError, match="feature 'genres': a sequence feature needs list values"):
        _spec().fit({**columns, "genres": np.array(["Drama"] * 4)})
    with pytest.raises(FeatureSpecError, match="unknown kind 'embedding'"):
        Feature("x", "embedding")
    with pytest.raises(FeatureSpecError, match="feature 'user_id' is not fitted yet"):
        _spec().lookup_layer("user_id")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FeatureSpecError, match="bad.json: not a tfrecs FeatureSpec file"):
        FeatureSpec.load(str(tmp_path / "bad.json"))


def test_encode_gives_the_lookup_layers_indices_and_passes_numerics_and_text_through():
    spec = FeatureSpec(
        [
            Feature("user_id", "categorical", num_oov_buckets=2),
            Feature("item_id", "categorical", dtype="int64"),
            Feature("age", "numeric"),
            Feature("genres", "sequence", max_length=3),
            Feature("history", "sequence", dtype="int64"),
            Feature("title", "text"),
        ]
    )
    spec = spec.fit({**_columns(), "history": object_column([(7, 8), (8,), (), (9, 8)])})
    columns = {
        "user_id": np.array(["u2", "nobody", "u1"]),
        "item_id": np.array([9, 12345, 7], np.int64),
        "age": np.array([1.0, 2.0, 3.0], np.float32),
        "genres": object_column([("Comedy", "", "Drama", "Drama"), (), ("Western",)]),
        "history": object_column([(8, -1, 9), (), (7,)]),
        "title": np.array(["a", "b", "c"]),
    }
    encoded = spec.encode(columns)
    expected_users = spec.lookup_layer("user_id")(tf.constant(columns["user_id"])).numpy()
    assert encoded["user_id"].tolist() == expected_users.tolist() and encoded["user_id"][0] == 2 + 1  # 2 OOV buckets
    assert encoded["item_id"].tolist() == [3, 0, 1]
    # sequence: [padding 0, OOV 1, Drama 2, Comedy 3]; max_length=3 keeps the first three places
    assert encoded["genres"].tolist() == [[3, 0, 2], [0, 0, 0], [1, 0, 0]]
    assert encoded["history"].tolist() == [[2, 0, 4], [0, 0, 0], [3, 0, 0]]  # vocabulary [8, 7, 9]; raw -1 pads
    assert encoded["genres"].dtype == np.int64 and encoded["history"].dtype == np.int64
    np.testing.assert_array_equal(encoded["age"], columns["age"])
    np.testing.assert_array_equal(encoded["title"], columns["title"])
    padded = spec.encode({"history": np.array([[-1, 8, 9], [7, -1, -1]], np.int64)}, features=["history"])
    assert padded["history"].tolist() == [[0, 2, 4], [3, 0, 0]]
    with pytest.raises(FeatureSpecError, match="'title' is missing"):
        spec.encode({k: v for k, v in columns.items() if k != "title"})
    with pytest.raises(FeatureSpecError, match="expected int64 ids"):
        spec.encode({"item_id": np.array(["7"])}, features=["item_id"])


def test_min_count_sends_rare_values_to_the_oov_buckets_and_round_trips():
    # counts: a 3, b 2, d 2, c 1, e 1 (and genres: Drama 3, Comedy 1; title tokens: heat 3, the 1, up 1)
    column = np.array(["a", "b", "a", "c", "d", "a", "b", "d", "e"])
    spec = FeatureSpec(
        [
            Feature("city", "categorical", min_count=2),
            Feature("town", "categorical", min_count=2, num_oov_buckets=2),
            Feature("genres", "sequence", min_count=2),
            Feature("title", "text", min_count=2),
        ]
    ).fit({"city": column, "town": column, "genres": _columns()["genres"], "title": _columns()["title"]})
    city = spec["city"]
    assert city.vocabulary == ["a", "b", "d"] and city.pruned_values == 2  # c and e: seen once
    assert city.vocabulary_size == 4  # 1 OOV + 3 known (5 without pruning)
    assert spec.encode({"city": np.array(["a", "b", "d", "c", "e", "zz"])}, ["city"])["city"].tolist() == [
        1,
        2,
        3,
        0,
        0,
        0,
    ]
    town = spec.lookup_layer("town")(tf.constant(["c", "e", "a"])).numpy()
    assert set(town[:2].tolist()) <= {0, 1}  # the rare values share the two OOV buckets
    assert town[2] == 2  # known values start after the OOV buckets
    assert spec["genres"].vocabulary == ["Drama"] and spec["genres"].pruned_values == 1
    assert spec["title"].vocabulary == ["heat"] and spec["title"].pruned_values == 2
    loaded = FeatureSpec.from_json(spec.to_json())
    assert (loaded["city"].min_count, loaded["city"].pruned_values, loaded["city"].vocabulary) == (
        2,
        2,
        ["a", "b", "d"],
    )
    assert FeatureSpec.from_config(spec.to_config())["town"].min_count == 2
    # refitting the unfitted declarations from the config gives the same vocabulary
    declared = FeatureSpec.from_config(
        {**spec.to_config(), "features": [{**f, "vocabulary": None} for f in spec.to_config()["features"][:1]]}
    )
    assert declared.fit({"city": column})["city"].vocabulary == ["a", "b", "d"]


def test_min_count_memory_effect_is_reported():
    from tfrecs.layers import FeatureEmbedding

    column = np.array(["a", "b", "a", "c", "d", "a", "b", "d", "e"])
    spec = FeatureSpec([Feature("city", "categorical", min_count=2)]).fit({"city": column})
    report = FeatureEmbedding(spec, 4).memory_report()["city"]
    # 4 rows (OOV + a, b, d) instead of 6 (OOV + a, b, c, d, e), float32 x 4 values
    assert report == {"bytes": 4 * 4 * 4, "uncompressed_bytes": 4 * 4 * 4, "unpruned_bytes": 6 * 4 * 4}


def test_bad_min_count_names_the_feature_and_the_argument():
    with pytest.raises(FeatureSpecError, match="feature 'city': min_count must be a whole number >= 1, got 0"):
        Feature("city", "categorical", min_count=0)
    with pytest.raises(FeatureSpecError, match="feature 'city': min_count must be a whole number >= 1, got 1.5"):
        Feature("city", "categorical", min_count=1.5)
    with pytest.raises(FeatureSpecError, match="feature 'age': min_count prunes vocabularies"):
        Feature("age", "numeric", min_count=3)
    with pytest.raises(FeatureSpecError, match="min_count must be a whole number >= 1, got -1"):
        FeatureSpec.from_config(
            {"format_version": 1, "features": [{"name": "city", "kind": "categorical", "min_count": -1}]}
        )
