"""Issue 15, data layer: no bad input accepted silently; every failure names its file, line or path.

Each case is either a clear ``tfrecs`` error (an ``InputError`` / ``StorageError``) naming
the culprit, or documented handling with a count (``docs/data_policies.md``).
"""

import gzip

import numpy as np
import pytest

from tfrecs.cli import main
from tfrecs.core.errors import InputError, StorageError, TfrecsError
from tfrecs.data import (
    CacheError,
    DataNotFoundError,
    DuplicateRowsError,
    EmptyFileError,
    MalformedFileError,
    RecDataset,
    fetch_ml100k,
    load_dataset,
    load_movielens,
    make_split,
)

GENRE_FLAGS = "|".join(["0"] * 8 + ["1"] + ["0"] * 10)  # Drama


def _grouplens_100k(
    directory,
    ratings="1\t10\t5\t881250949\n2\t10\t3\t881250950\n1\t20\t4\t881250951\n",
    item_title="Heat (1995)",
    item_encoding="latin-1",
):
    (directory / "u.data").write_text(ratings, encoding="utf-8")
    (directory / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n", encoding="utf-8")
    (directory / "u.item").write_text(
        f"10|{item_title}|01-Jan-1995||http://x|{GENRE_FLAGS}\n20|Casino (1995)|01-Jan-1995||http://y|{GENRE_FLAGS}\n",
        encoding=item_encoding,
    )
    return directory


@pytest.fixture(autouse=True)
def _no_data_dir_from_the_environment(monkeypatch):
    monkeypatch.delenv("TFRECS_DATA_DIR", raising=False)


# 1. A named directory that does not exist, or holds nothing recognisable, is an error naming it.


def test_a_missing_data_dir_is_an_error_naming_it_never_the_cache(tmp_path):
    missing = str(tmp_path / "does" / "not" / "exist")
    loaders = (lambda: load_dataset("ml-100k", data_dir=missing), lambda: load_movielens("ml-100k", data_dir=missing))
    for load in loaders:
        with pytest.raises(DataNotFoundError, match=f"data directory {missing} does not exist") as error:
            load()
        assert isinstance(error.value, StorageError) and isinstance(error.value, FileNotFoundError)


def test_a_missing_data_dir_from_the_environment_is_an_error_too(tmp_path, monkeypatch):
    monkeypatch.setenv("TFRECS_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(DataNotFoundError, match="typo does not exist"):
        load_dataset("ml-100k")


def test_a_data_dir_without_known_files_names_what_was_looked_for(tmp_path):
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(DataNotFoundError) as error:
        load_dataset("ml-100k", data_dir=str(tmp_path))
    message = str(error.value)
    assert str(tmp_path) in message
    assert all(name in message for name in ("u.data", "ml-100k.inter", "ml-100k.txt.gz"))


def test_a_data_root_with_a_folder_per_data_set_is_found(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    _grouplens_100k(tmp_path / "ml-100k")
    ds = load_dataset("ml-100k", data_dir=str(tmp_path))
    assert len(ds) == 3 and ds.notes["source"] == str(tmp_path / "ml-100k") and ds.notes["layout"] == "u.data"


def test_cli_data_stats_on_a_missing_directory_exits_2_naming_it(capsys):
    assert main(["data", "stats", "ml-100k", "--data-dir", "/does/not/exist"]) == 2
    assert "/does/not/exist does not exist" in capsys.readouterr().err


def test_synthetic_data_sets_refuse_a_data_dir(tmp_path):
    with pytest.raises(InputError, match="synthetic-implicit is generated and reads no files"):
        load_dataset("synthetic-implicit", data_dir=str(tmp_path))


# 2. Exact duplicates: dropped and counted by default, kept or refused on request;
#    random splits keep every copy of a (user, item) pair in one part.

DUPLICATED = "1\t10\t5\t100\n1\t20\t4\t101\n1\t10\t5\t100\n2\t10\t3\t102\n1\t10\t5\t100\n2\t20\t2\t103\n"


def test_exact_duplicates_are_dropped_and_counted_by_default(tmp_path):
    _grouplens_100k(tmp_path, ratings=DUPLICATED)
    ds = load_dataset("ml-100k", data_dir=str(tmp_path))
    assert len(ds) == 4 and ds.stats()["duplicates_dropped"] == 2
    # first occurrences kept, file order kept
    assert ds.interactions["timestamp"].tolist() == [100, 101, 102, 103]


def test_duplicates_kept_on_request_and_refused_on_request(tmp_path):
    _grouplens_100k(tmp_path, ratings=DUPLICATED)
    kept = load_dataset("ml-100k", data_dir=str(tmp_path), duplicates="keep")
    assert len(kept) == 6 and kept.stats()["duplicates_kept"] == 2
    with pytest.raises(DuplicateRowsError, match=r"2 exact duplicate interaction row\(s\).*row 3: user_id='1'"):
        load_dataset("ml-100k", data_dir=str(tmp_path), duplicates="error")
    with pytest.raises(InputError, match="duplicates='first': choose one of drop, keep, error"):
        load_dataset("ml-100k", data_dir=str(tmp_path), duplicates="first")


def test_same_pair_at_different_times_is_not_an_exact_duplicate():
    ds = RecDataset(
        "t", {"user_id": np.array(["a", "a"]), "item_id": np.array(["x", "x"]), "timestamp": np.array([1, 2])}
    ).deduplicated()
    assert len(ds) == 2 and ds.notes["duplicates_dropped"] == 0
    no_time = RecDataset("t", {"user_id": np.array(["a", "a"]), "item_id": np.array(["x", "x"])}).deduplicated()
    assert len(no_time) == 1 and no_time.notes["duplicates_dropped"] == 1


@pytest.mark.parametrize("protocol", ["random", "random-global"])
def test_random_splits_put_every_copy_of_a_pair_in_one_part(protocol):
    rng = np.random.default_rng(0)
    users = rng.integers(0, 30, 3000).astype(str)
    items = rng.integers(0, 40, 3000).astype(str)  # many (user, item) pairs repeat
    ds = RecDataset("repeats", {"user_id": users, "item_id": items, "timestamp": np.arange(3000)})
    for seed in (1, 2, 3):
        split = make_split(ds, protocol, seed=seed)
        pairs = [
            set(zip(p.interactions["user_id"], p.interactions["item_id"]))
            for p in (split.train, split.valid, split.test)
        ]
        assert not (pairs[0] & pairs[1]) and not (pairs[0] & pairs[2]) and not (pairs[1] & pairs[2])
        assert sum(split.sizes().values()) == len(ds)
        distinct = len(set(zip(users, items)))
        assert sum(len(p) for p in pairs) == distinct
        assert 0.7 * distinct < len(pairs[0]) < 0.9 * distinct  # ratios count distinct pairs


# 3. Text decoding: UTF-8 first; GroupLens' own Latin-1 files decode as Latin-1; the choice is reported.


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_u_item_decodes_by_the_rule_and_reports_it(tmp_path, encoding):
    _grouplens_100k(tmp_path, item_title="Amélie (2001)", item_encoding=encoding)
    ds = load_dataset("ml-100k", data_dir=str(tmp_path))
    assert ds.items["title"].tolist()[0] == "Amélie"  # no mojibake either way ("AmÃ©lie")
    encodings = ds.stats()["encodings"]
    assert encodings[str(tmp_path / "u.item")] == encoding
    assert encodings[str(tmp_path / "u.data")] == "utf-8"


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_ml1m_movies_dat_decodes_by_the_rule(tmp_path, encoding):
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n")
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n")
    (tmp_path / "movies.dat").write_text("1::Amélie (2001)::Comedy|Romance\n", encoding=encoding)
    ds = load_dataset("ml-1m", data_dir=str(tmp_path))
    assert ds.items["title"].tolist() == ["Amélie"] and ds.notes["encodings"][str(tmp_path / "movies.dat")] == encoding


def test_a_ratings_file_that_is_not_utf8_names_file_and_line(tmp_path):
    _grouplens_100k(tmp_path)
    (tmp_path / "u.data").write_bytes(b"1\t10\t5\t881250949\n2\t1\xe90\t3\t881250950\n")
    with pytest.raises(MalformedFileError, match=r"u\.data:2: not valid utf-8 text \(byte 0xe9 at column 4\)"):
        load_dataset("ml-100k", data_dir=str(tmp_path))


# 4. An empty or unparsable timestamp (and other bad values) are rejected with file and line.


@pytest.mark.parametrize(
    "line, message",
    [
        ("2\t10\t3\t", "column 'timestamp' is empty"),
        ("2\t10\t3\t \r", "column 'timestamp' is empty"),
        ("2\t10\t3\tyesterday", "column 'timestamp' expects int, got 'yesterday'"),
        ("2\t10\t3\tnan", "column 'timestamp' expects int, got 'nan'"),
        ("2\t10\t3\t1e300", "column 'timestamp' expects int, got '1e300'"),
        ("2\t10\tinf\t881250950", "column 'rating' expects float, got 'inf'"),
        ("2\t10\tnan\t881250950", "column 'rating' expects float, got 'nan'"),
        ("\t10\t3\t881250950", "column 'user_id' is empty"),
        ("2\t\t3\t881250950", "column 'item_id' is empty"),
    ],
)
def test_bad_values_name_file_line_and_column(tmp_path, line, message):
    _grouplens_100k(tmp_path, ratings=f"1\t10\t5\t881250949\n{line}\n")
    with pytest.raises(MalformedFileError) as error:
        load_dataset("ml-100k", data_dir=str(tmp_path))
    assert f"u.data:2: {message}" in str(error.value)


# The same bad line in every reader's layout: always file:line, never a silent value.
LAYOUTS = {
    "u.data": ("1\t10\t5\t881250949\n", "2\t10\t3\t{ts}\n"),
    "ratings.dat": ("1::10::5::881250949\n", "2::10::3::{ts}\n"),
    "ratings.csv": ("userId,movieId,rating,timestamp\n", "2,10,3,{ts}\n"),
    "ml-100k.inter": ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n", "2\t10\t3\t{ts}\n"),
}  # the sequence file's own bad lines are in tests/test_sequence_file.py


@pytest.mark.parametrize("file_name", sorted(LAYOUTS))
@pytest.mark.parametrize("timestamp", ["", "x1", "inf"])
def test_every_reader_rejects_a_bad_second_line(tmp_path, file_name, timestamp):
    first, second = LAYOUTS[file_name]
    (tmp_path / file_name).write_text(first + second.format(ts=timestamp))
    for companion in ("u.user", "u.item", "users.dat", "movies.dat", "ml-100k.user", "ml-100k.item"):
        (tmp_path / companion).write_text("")
    with pytest.raises(MalformedFileError, match=rf"{file_name}:2: "):
        load_dataset("ml-100k", data_dir=str(tmp_path))


# 5. An empty ratings file is an error naming the file.


@pytest.mark.parametrize(
    "file_name, content",
    [
        ("u.data", ""),
        ("u.data", "\n\n"),
        ("ratings.dat", ""),
        ("ratings.csv", "userId,movieId,rating,timestamp\n"),
        ("ml-100k.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"),
        ("ml-100k.txt.gz", None),
    ],
)
def test_an_empty_ratings_file_is_an_error_naming_it(tmp_path, file_name, content):
    path = tmp_path / file_name
    if content is None:
        with gzip.open(path, "wt") as handle:
            handle.write("")
    else:
        path.write_text(content)
    with pytest.raises(EmptyFileError, match=f"{path}: the file holds no interactions"):
        load_dataset("ml-100k", data_dir=str(tmp_path))


def test_cli_data_stats_on_an_empty_ratings_file_exits_2_naming_it(tmp_path, capsys):
    _grouplens_100k(tmp_path, ratings="")
    assert main(["data", "stats", "ml-100k", "--data-dir", str(tmp_path)]) == 2
    assert f"{tmp_path / 'u.data'}: the file holds no interactions" in capsys.readouterr().err


def test_an_empty_data_set_built_in_code_says_so_when_split():
    empty = RecDataset("empty", {"user_id": np.array([], dtype=str), "item_id": np.array([], dtype=str)})
    with pytest.raises(InputError, match="the data set has no interactions"):
        make_split(empty, "random")


# 6. A cache directory that cannot be written: one line naming the path (tests run as root,
#    so the cache is put under a regular file, which no user can turn into a directory).


def test_an_unwritable_cache_is_one_storage_error_naming_the_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    cache = str(blocker / "sub")
    for fetch in (lambda: fetch_ml100k(cache), lambda: load_movielens("ml-100k", cache_dir=cache, source="recbole")):
        with pytest.raises(CacheError) as error:
            fetch()
        message = str(error.value)
        assert isinstance(error.value, StorageError) and isinstance(error.value, OSError)
        assert f"cannot write the tfrecs cache directory {cache}/ml-100k" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing partial left


def test_every_data_error_is_a_tfrecs_error():
    for cls in (CacheError, DataNotFoundError, DuplicateRowsError, EmptyFileError, MalformedFileError):
        assert issubclass(cls, TfrecsError)
