"""MovieLens loading: the real ML-100K, every GroupLens layout, checksums, clear errors."""

import os
import shutil

import numpy as np
import pytest

from tfrecs.data import DataNotFoundError, DatasetUnavailableError, MalformedFileError, load_dataset, load_movielens
from tfrecs.data.movielens import RECBOLE_FILES, default_cache_dir, fetch_ml100k


def test_ml100k_has_the_published_counts(ml100k):
    stats = ml100k.stats()
    assert (stats["num_users"], stats["num_items"], stats["num_interactions"]) == (943, 1682, 100000)
    assert stats["rating_counts"] == {"1.0": 6110, "2.0": 11370, "3.0": 27145, "4.0": 34174, "5.0": 21201}
    assert stats["interactions_per_user_min"] == 20


def test_ml100k_features_are_parsed(ml100k):
    items = ml100k.items
    toy_story = int(np.flatnonzero(items["item_id"] == "1")[0])
    assert items["title"][toy_story] == "Toy Story"
    assert items["release_year"][toy_story] == 1995
    assert items["genres"][toy_story] == ("Animation", "Children's", "Comedy")
    # RecBole's copy left "(1995)" in this title and put "V" as its year: repaired from the title.
    land_before_time = int(np.flatnonzero(items["item_id"] == "1412")[0])
    assert items["release_year"][land_before_time] == 1995
    user_one = int(np.flatnonzero(ml100k.users["user_id"] == "1")[0])
    assert (
        ml100k.users["age"][user_one],
        ml100k.users["gender"][user_one],
        ml100k.users["occupation"][user_one],
        ml100k.users["zip_code"][user_one],
    ) == (24, "M", "technician", "85711")


def test_cache_dir_argument_and_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TFRECS_CACHE_DIR", str(tmp_path / "from_env"))
    assert default_cache_dir() == str(tmp_path / "from_env")
    assert default_cache_dir(str(tmp_path / "arg")) == str(tmp_path / "arg")


def test_corrupt_cache_is_detected_and_not_used(tmp_path):
    shutil.copytree(os.path.join(default_cache_dir(), "ml-100k"), tmp_path / "ml-100k")
    with open(tmp_path / "ml-100k" / "ml-100k.inter", "a") as handle:
        handle.write("1\t1\t5\t881250949\n")
    with pytest.raises(DatasetUnavailableError) as error:
        load_movielens("ml-100k", cache_dir=str(tmp_path), source="cache")
    assert "sha256" in str(error.value) and "ml-100k.inter" in str(error.value)


def test_fetch_repairs_a_corrupt_cache_from_pypi(tmp_path):
    shutil.copytree(os.path.join(default_cache_dir(), "ml-100k"), tmp_path / "ml-100k")
    (tmp_path / "ml-100k" / "ml-100k.user").write_text("garbage")
    fetch_ml100k(str(tmp_path))
    ds = load_movielens("ml-100k", cache_dir=str(tmp_path), source="cache")
    assert ds.num_users == 943 and sorted(os.listdir(tmp_path / "ml-100k")) == sorted(RECBOLE_FILES)


def test_no_source_error_names_every_place_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("TFRECS_DATA_DIR", raising=False)
    with pytest.raises(DatasetUnavailableError) as error:
        load_movielens("ml-1m", cache_dir=str(tmp_path))
    message = str(error.value)
    assert "data directory: none given" not in message  # auto without a directory: not an attempt
    assert "TFDS movielens/1m-ratings" in message
    with pytest.raises(DatasetUnavailableError, match="data directory: none given"):
        load_movielens("ml-1m", cache_dir=str(tmp_path), source="dir")


def test_a_named_directory_is_the_only_source(tmp_path, monkeypatch):
    # An empty named directory is an error naming it and the files looked for: no TFDS, no cache.
    monkeypatch.delenv("TFRECS_DATA_DIR", raising=False)
    with pytest.raises(DataNotFoundError) as error:
        load_movielens("ml-1m", data_dir=str(tmp_path), cache_dir=str(tmp_path))
    assert f"data directory {tmp_path} holds none of" in str(error.value) and "ratings.dat" in str(error.value)
    assert "TFDS" not in str(error.value)


def _write(directory, name, text, encoding="utf-8"):
    path = directory / name
    path.write_text(text, encoding=encoding)
    return path


def _grouplens_100k(directory):
    _write(directory, "u.data", "1\t10\t5\t881250949\n2\t10\t3\t881250950\n1\t20\t4\t881250951\n")
    _write(directory, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    flags_10 = ["0"] * 19
    flags_10[1] = flags_10[5] = "1"  # Action, Comedy
    flags_20 = ["0"] * 19
    flags_20[8] = "1"  # Drama
    _write(
        directory,
        "u.item",
        "10|Heat (1995)|01-Jan-1995||http://x|" + "|".join(flags_10) + "\n"
        "20|Café Society|01-Jan-1996||http://y|" + "|".join(flags_20) + "\n",
        encoding="latin-1",
    )


def test_grouplens_100k_layout(tmp_path):
    _grouplens_100k(tmp_path)
    ds = load_movielens("ml-100k", data_dir=str(tmp_path))
    assert len(ds) == 3 and ds.num_users == 2 and ds.num_items == 2
    assert ds.items["title"].tolist() == ["Heat", "Café Society"]
    assert ds.items["release_year"].tolist() == [1995, 1996]
    assert ds.items["genres"][0] == ("Action", "Comedy")
    assert ds.interactions["rating"].dtype == np.float32 and ds.interactions["timestamp"].dtype == np.int64


def test_grouplens_1m_layout(tmp_path):
    _write(tmp_path, "ratings.dat", "1::1193::5::978300760\n2::661::3::978302109\n")
    _write(tmp_path, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n", encoding="latin-1")
    _write(
        tmp_path,
        "movies.dat",
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's|Musical\n",
        encoding="latin-1",
    )
    ds = load_movielens("ml-1m", data_dir=str(tmp_path))
    assert len(ds) == 2
    assert ds.items["genres"][1] == ("Animation", "Children's", "Musical")
    assert ds.users["gender"].tolist() == ["F", "M"] and ds.users["age"].tolist() == [1, 56]


def test_grouplens_csv_layout(tmp_path):
    _write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n")
    _write(
        tmp_path,
        "movies.csv",
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,"Grumpier Old Men, The (1995)",Comedy|Romance\n',
    )
    ds = load_movielens("ml-latest-small", data_dir=str(tmp_path))
    assert ds.interactions["rating"].tolist() == [4.0, 4.5]
    assert ds.items["title"].tolist() == ["Toy Story", "Grumpier Old Men, The"]
    assert ds.users is None and ds.num_users == 1


def test_malformed_ratings_line_names_file_and_line(tmp_path):
    _grouplens_100k(tmp_path)
    _write(tmp_path, "u.data", "1\t10\t5\t881250949\n2\t10\tthree\t881250950\n")
    with pytest.raises(MalformedFileError, match=r"u\.data:2: column 'rating' expects float, got 'three'"):
        load_movielens("ml-100k", data_dir=str(tmp_path))
    _write(tmp_path, "u.data", "1\t10\t5\t881250949\n2\t10\n")
    with pytest.raises(MalformedFileError, match=r"u\.data:2: expected 4 fields"):
        load_movielens("ml-100k", data_dir=str(tmp_path))


def test_missing_column_names_the_column(tmp_path):
    _write(tmp_path, "ratings.csv", "userId,movieId,timestamp\n1,1,964982703\n")
    with pytest.raises(MalformedFileError, match=r"ratings\.csv:1: missing column\(s\) \['rating'\]"):
        load_movielens("ml-latest-small", data_dir=str(tmp_path))
    recbole = tmp_path / "recbole"
    recbole.mkdir()
    _write(recbole, "ml-100k.inter", "user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3\n")
    with pytest.raises(MalformedFileError, match=r"ml-100k\.inter:1: missing column 'rating'"):
        load_movielens("ml-100k", data_dir=str(recbole))


def test_unknown_dataset_and_source_names():
    with pytest.raises(KeyError, match="unknown dataset 'ml-10k'.*ml-100k"):
        load_dataset("ml-10k")
    with pytest.raises(KeyError, match="unknown source 'web'"):
        load_movielens("ml-100k", source="web")
