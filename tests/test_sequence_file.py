"""Issue 14 item 1: the sequence-file format (``user item`` per line, file order = time order)."""

import gzip
import os

import numpy as np
import pytest

from tfrecs.data import (
    DataNotFoundError,
    EmptyFileError,
    MalformedFileError,
    load_dataset,
    make_split,
    read_sequence_file,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_ML1M = os.path.join(REPO_ROOT, "..", "shared", "data", "ml-1m", "ml-1m.txt.gz")

# Users interleaved on purpose: file order, not user order, is the time order.
HAND_WRITTEN = "1 5\n2 7\n1 3\n\n1 9\n2 5\n1 4\n2 1\n"


def _pairs(part):
    return sorted(zip(part.interactions["user_id"].tolist(), part.interactions["item_id"].tolist()))


@pytest.mark.parametrize("file_name", ["toy.txt", "toy.txt.gz"])
def test_a_hand_written_file_keeps_its_order(tmp_path, file_name):
    path = tmp_path / file_name
    if file_name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(HAND_WRITTEN)
    else:
        path.write_text(HAND_WRITTEN)
    ds = read_sequence_file(str(path))
    assert ds.name == "toy" and (len(ds), ds.num_users, ds.num_items) == (7, 2, 6)
    assert ds.interactions["user_id"].tolist() == ["1", "2", "1", "1", "2", "1", "2"]
    assert ds.interactions["item_id"].tolist() == ["5", "7", "3", "9", "5", "4", "1"]
    assert ds.interactions["timestamp"].tolist() == [1, 2, 3, 5, 6, 7, 8]  # line numbers (line 4 is blank)
    assert ds.users is None and ds.items is None and ds.notes["layout"] == "sequence file"
    split = make_split(ds, "loo")  # leave-one-out in file order
    assert _pairs(split.test) == [("1", "4"), ("2", "1")]
    assert _pairs(split.valid) == [("1", "9"), ("2", "5")]
    assert _pairs(split.train) == [("1", "3"), ("1", "5"), ("2", "7")]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("1 5 4", "expected 2 whitespace-separated fields `user item`, got 3"),
        ("17", "expected 2 whitespace-separated fields `user item`, got 1"),
        ("1\t5\t978300760", "expected 2 whitespace-separated fields `user item`, got 3"),
    ],
)
def test_a_malformed_line_is_reported_with_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "seq.txt"
    path.write_text(f"1 5\n2 7\n{bad_line}\n1 9\n")
    with pytest.raises(MalformedFileError) as error:
        read_sequence_file(str(path))
    assert f"{path}:3: {message}" in str(error.value)


def test_bytes_that_are_not_utf8_name_file_and_line(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_bytes(b"1 5\n2 \xff7\n")
    with pytest.raises(MalformedFileError, match=r"seq\.txt:2: not valid utf-8 text"):
        read_sequence_file(str(path))


def test_a_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "seq.txt.gz"
    data = gzip.compress("".join(f"{i} {i * 7919 % 10007}\n" for i in range(5000)).encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MalformedFileError, match=r"seq\.txt\.gz:\d+: unreadable compressed data"):
        read_sequence_file(str(path))


def test_tabs_and_windows_line_ends_are_whitespace(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_bytes(b"u1\ti1\r\nu1  i2\r\n")
    ds = read_sequence_file(str(path))
    assert ds.interactions["item_id"].tolist() == ["i1", "i2"]


def test_empty_and_missing_files_are_named(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(EmptyFileError, match="empty.txt: the file holds no interactions"):
        read_sequence_file(str(tmp_path / "empty.txt"))
    with pytest.raises(DataNotFoundError, match="nope.txt does not exist"):
        read_sequence_file(str(tmp_path / "nope.txt"))


def test_by_name_ml1m_finds_its_sequence_file(tmp_path):
    (tmp_path / "ml-1m.txt").write_text(HAND_WRITTEN)
    for data_dir in (tmp_path, tmp_path / "ml-1m.txt"):
        ds = load_dataset("ml-1m", data_dir=str(data_dir))
        assert ds.name == "ml-1m" and len(ds) == 7 and ds.notes["source"] == str(tmp_path / "ml-1m.txt")


def test_own_sequences_by_name(tmp_path, monkeypatch):
    monkeypatch.delenv("TFRECS_DATA_DIR", raising=False)
    (tmp_path / "sessions.txt").write_text(HAND_WRITTEN)
    for data_dir in (tmp_path, tmp_path / "sessions.txt"):
        ds = load_dataset("sequences", data_dir=str(data_dir))
        assert ds.name == "sessions" and len(ds) == 7 and ds.stats()["duplicates_dropped"] == 0
    (tmp_path / "other.txt.gz").write_bytes(gzip.compress(b"1 1\n"))
    with pytest.raises(MalformedFileError, match=r"holds several sequence files \['other.txt.gz', 'sessions.txt'\]"):
        load_dataset("sequences", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="the 'sequences' data set reads your own file"):
        load_dataset("sequences")


def test_the_shared_ml1m_file_when_present():
    """SASRec's preprocessed ML-1M (``../shared/data``): the counts of its PROVENANCE.md."""
    if not os.path.exists(SHARED_ML1M):  # the project never commits data; the hand-written tests above still run
        return
    ds = load_dataset("ml-1m", data_dir=os.path.dirname(SHARED_ML1M))
    assert (ds.num_users, ds.num_items, len(ds)) == (6040, 3416, 999611)
    assert ds.stats()["duplicates_dropped"] == 0
    lengths = np.unique(ds.interactions["user_id"], return_counts=True)[1]
    assert (lengths.min(), lengths.max()) == (18, 2277)
    assert make_split(ds, "loo").sizes() == {"train": 999611 - 2 * 6040, "valid": 6040, "test": 6040}
