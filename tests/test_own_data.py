"""Your own data in: from_dataframe / from_files / read_data_config, features chosen by the
views, and one end-to-end recipe per family on a CSV written by the test."""

import json
import math

import numpy as np
import pandas as pd
import pytest

import tfrecs  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow)
from tfrecs.core.errors import InputError
from tfrecs.data import (
    EmptyFileError,
    MalformedDataError,
    MalformedFileError,
    from_dataframe,
    from_files,
    make_split,
    read_data_config,
)
from factories.own_data import COLUMNS, GENRES, own_frame  # noqa: F401
from tfrecs.pipelines.ctr_view import CTR_SPLIT, load_ctr_data
from tfrecs.pipelines.two_tower_view import TwoTowerData


@pytest.fixture(scope="module")
def frame():
    return own_frame()


@pytest.fixture(scope="module")
def csv_path(frame, tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "mydata.csv"
    frame.to_csv(path, index=False)
    return path


def assert_same(a, b):
    for part in ("interactions", "users", "items"):
        left, right = getattr(a, part), getattr(b, part)
        assert (left is None) == (right is None), part
        if left is None:
            continue
        assert list(left) == list(right), part
        for column in left:
            assert left[column].dtype == right[column].dtype, (part, column)
            assert [tuple(v) if isinstance(v, tuple) else v for v in left[column].tolist()] == [
                tuple(v) if isinstance(v, tuple) else v for v in right[column].tolist()
            ], (part, column)


def test_csv_gives_interactions_and_feature_tables(csv_path, frame):
    ds = from_files(csv_path, **COLUMNS)
    assert ds.name == "mydata" and len(ds) == len(frame) == 2000
    assert ds.interactions["user_id"].dtype.kind == "U" and ds.interactions["item_id"][0] == frame.movie[0]
    assert ds.interactions["rating"].dtype == np.float32 and ds.interactions["timestamp"].dtype == np.int64
    assert list(ds.users) == ["user_id", "age", "country"] and len(ds.users["user_id"]) == 100
    assert ds.users["age"].dtype == np.int64 and ds.users["country"].dtype.kind == "U"
    first = frame.drop_duplicates("movie").set_index("movie")
    items = dict(zip(ds.items["item_id"], ds.items["genres"]))
    assert all(items[m] == tuple(first.genres[m].split("|")) for m in first.index)
    assert list(ds.items["item_id"]) == sorted(ds.items["item_id"])  # catalogue order: sorted ids
    assert ds.notes["source"] == str(csv_path) and ds.notes["duplicates_dropped"] == 0


def test_tsv_parquet_and_dataframe_equal_the_csv(csv_path, frame, tmp_path):
    from_csv = from_files(csv_path, **COLUMNS)
    tsv = tmp_path / "mydata.tsv"
    frame.to_csv(tsv, sep="\t", index=False)
    assert_same(from_files(tsv, **COLUMNS), from_csv)
    parquet = tmp_path / "mydata.parquet"
    frame.to_parquet(parquet, index=False)
    assert_same(from_files(parquet, **COLUMNS), from_csv)
    assert_same(from_dataframe(frame, **COLUMNS), from_csv)
    listed = frame.assign(genres=[tuple(g.split("|")) for g in frame.genres])  # python lists: no separator needed
    columns = {**COLUMNS, "list_features": ()}
    assert_same(from_dataframe(listed, **columns), from_csv)


def test_integer_ids_of_a_dataframe_stay_int64():
    df = pd.DataFrame({"u": [1, 1, 2], "i": [10, 20, 10], "r": [5.0, 3.0, 4.0]})
    ds = from_dataframe(df, user="u", item="i", rating="r")
    assert ds.interactions["user_id"].dtype == np.int64 and ds.users is None and ds.items is None


def write(tmp_path, text, name="bad.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("u,i,r\na,x,5\nb,,4\n", 3, "column 'i' is empty"),
        ("u,i,r\na,x,5\n\nb,y,nan\n", 4, "column 'r' expects float, got 'nan'"),
        ("u,i,r\na,x,5\nb,y,4,9\n", 3, "expected 3 fields"),
        ("u,i,r\na,x,5\nb,y\n", 3, "expected 3 fields"),
    ],
)
def test_a_malformed_row_names_file_and_line(tmp_path, text, line, reason):
    path = write(tmp_path, text)
    with pytest.raises(MalformedFileError, match=rf"bad\.csv:{line}: {reason}"):
        from_files(path, user="u", item="i", rating="r")


def test_a_missing_declared_column_is_named(csv_path):
    with pytest.raises(MalformedFileError, match=r"mydata\.csv:1: missing column\(s\) \['gender'\]"):
        from_files(csv_path, **{**COLUMNS, "user_features": ["age", "gender"]})
    with pytest.raises(MalformedDataError, match=r"missing column\(s\) \['clicks'\]"):
        from_dataframe(pd.DataFrame({"u": ["a"], "i": ["x"]}), user="u", item="i", label="clicks")


def test_a_user_feature_that_changes_within_a_user_is_refused(tmp_path):
    path = write(tmp_path, "u,i,age\na,x,30\nb,x,40\na,y,31\n")
    with pytest.raises(MalformedFileError, match=r"bad\.csv:4: user feature 'age' changes within user 'a'.*bad\.csv:2"):
        from_files(path, user="u", item="i", user_features=["age"])
    df = pd.DataFrame({"u": ["a", "a"], "i": ["x", "y"], "country": ["fr", "de"]})
    with pytest.raises(MalformedDataError, match="user feature 'country' changes within user 'a'"):
        from_dataframe(df, user="u", item="i", user_features="country")


def test_bad_arguments_and_empty_files_are_refused(tmp_path):
    with pytest.raises(EmptyFileError, match="holds no interactions"):
        from_files(write(tmp_path, "u,i\n"), user="u", item="i")
    with pytest.raises(InputError, match="pass format="):
        from_files(write(tmp_path, "a x\n", "s.txt"))
    with pytest.raises(InputError, match="declared twice"):
        from_files(write(tmp_path, "u,i\na,x\n"), user="u", item="u")
    with pytest.raises(MalformedDataError, match="DataFrame row 1 .*column 'i' is empty"):
        from_dataframe(pd.DataFrame({"u": ["a", "b"], "i": ["x", None]}), user="u", item="i")


def test_sequence_formats(tmp_path):
    sequences = write(tmp_path, "alice a b c\nbob c a\n", "seq.txt")
    ds = from_files(sequences, format="sequences")
    assert ds.interactions["item_id"].tolist() == ["a", "b", "c", "c", "a"]
    assert ds.interactions["timestamp"].tolist() == [1, 2, 3, 4, 5] and ds.name == "seq"
    with pytest.raises(MalformedFileError, match=r"seq2\.txt:3: user 'alice' already has a sequence at line 1"):
        from_files(write(tmp_path, "alice a b\nbob c\nalice d\n", "seq2.txt"), format="sequences")
    with pytest.raises(InputError, match=r"has no columns to name; drop \['rating'\]"):
        from_files(sequences, format="sequences", rating="r")
    pairs = from_files(write(tmp_path, "alice a\nalice b\nbob a\n", "pairs.txt"), format="pairs")
    assert len(pairs) == 3 and pairs.interactions["timestamp"].tolist() == [1, 2, 3]


def test_data_config_round_trip(csv_path, tmp_path):
    config = tmp_path / "conf" / "data.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"path": "../" + csv_path.name, **COLUMNS}))
    (tmp_path / csv_path.name).write_bytes(csv_path.read_bytes())
    arguments = read_data_config(config)
    assert arguments["path"] == str(tmp_path / csv_path.name)
    assert_same(from_files(**arguments), from_files(csv_path, **COLUMNS))
    config.write_text(json.dumps({"path": "x.csv", "users": "u", "colour": 1}))
    with pytest.raises(InputError, match=r"unknown data config key\(s\) \['colour', 'users'\]"):
        read_data_config(config)


def test_views_use_the_features_the_data_has(tmp_path, frame):
    plain = from_dataframe(frame, user="user", item="movie", rating="stars")
    data = load_ctr_data(make_split(plain, CTR_SPLIT, seed=1))
    assert data.features == ["user_id", "item_id"]
    with pytest.raises(InputError, match=r"\['gender'\] named in features are not columns"):
        load_ctr_data(make_split(plain, CTR_SPLIT, seed=1), features=["user_id", "gender"])
    unrated = from_dataframe(frame, user="user", item="movie")
    with pytest.raises(InputError, match=r"a CTR model needs a rating \(or label\) column"):
        load_ctr_data(make_split(unrated, CTR_SPLIT, seed=1))
    full = from_dataframe(frame, **COLUMNS)
    chosen = load_ctr_data(make_split(full, CTR_SPLIT, seed=1), features="user_id,item_id,country,genres")
    assert chosen.features == ["user_id", "item_id", "country", "genres"]
    assert chosen.spec["genres"].kind == "sequence" and chosen.spec["country"].kind == "categorical"
    towers = TwoTowerData.from_split(make_split(full, "random", seed=1), 10)
    assert towers.query_features == ["user_id", "age", "country", "history"]
    assert towers.candidate_features == ["item_id", "genres", "title"]
    narrow = TwoTowerData.from_split(
        make_split(full, "random", seed=1), 10, query_features=["user_id"], candidate_features="genres"
    )
    assert set(narrow.user_features) == {"user_id"} and set(narrow.candidates) == {"item_id", "genres"}
    assert narrow.item_titles is not None
    next(iter(narrow.training_dataset(64)))
    with pytest.raises(InputError, match=r"query_features names \['gender'\], which the data lacks"):
        TwoTowerData.from_split(make_split(full, "random", seed=1), 10, query_features=["user_id", "gender"])


@pytest.mark.parametrize(
    "model, hparams",
    [
        ("deepfm", {"hidden_units": (16,), "features": ("user_id", "item_id", "age", "genres")}),
        ("two_tower", {"embedding_dim": 8, "query_units": (16,), "candidate_units": (16,)}),
        ("sasrec", {"dim": 16, "max_len": 20, "num_blocks": 1}),
    ],
)
def test_recipes_train_on_own_data(csv_path, model, hparams):
    from tfrecs.recipes import TrainConfig, train

    config = TrainConfig(
        model=model,
        dataset="mydata",
        data={"path": str(csv_path), **COLUMNS},
        epochs=1,
        batch_size=256,
        hparams=hparams,
        verbose=0,
    )
    figures = train(config).figures
    numbers = {k: v for k, v in figures.items() if isinstance(v, float)}
    assert numbers and all(math.isfinite(v) for v in numbers.values()), figures
