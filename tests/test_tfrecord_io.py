"""TFRecord I/O: exact round trips, deterministic order, damaged shards named, bad input refused."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.data import Feature, FeatureSpec, FeatureSpecError, criteo_feature_spec, object_column, synthetic_ctr
from tfrecs.pipelines import ReadReport, TFRecordIntegrityError, load_schema, read_tfrecords, write_tfrecords
from tfrecs.pipelines.example_encoder import encode_examples
from tfrecs.pipelines.tfrecord_schema import infer_schema
from tfrecs.pipelines.tfrecord_writer import column_values

N = 1003  # not a multiple of shards or batches


def _columns():
    rng = np.random.default_rng(0)
    return {
        "user": np.arange(N, dtype=np.int64),
        "score": rng.normal(size=N).astype(np.float32),
        "name": np.array([f"name-{i}" for i in range(N)]),
        "fixed": rng.integers(-5, 100, size=(N, 3)),
        "history": object_column([list(rng.integers(0, 50, size=i % 7)) for i in range(N)]),
        "genres": object_column([tuple(["a", "b", "c"][: i % 4]) for i in range(N)]),
    }


def _read_all(path, **kwargs):
    batches = list(read_tfrecords(path, **kwargs))
    return {name: tf.concat([b[name] for b in batches], axis=0) for name in batches[0]}


@pytest.mark.parametrize("compression", [None, "GZIP"])
def test_round_trip_scalar_list_and_sequence_features_in_order(tmp_path, compression):
    columns = _columns()
    schema = write_tfrecords(columns, str(tmp_path), num_shards=4, compression=compression, batch_size=128)
    assert schema.num_records == N and len(schema.shards) == 4
    assert {c.name: c.shape for c in schema.columns} == {
        "user": "scalar",
        "score": "scalar",
        "name": "scalar",
        "fixed": "fixed",
        "history": "ragged",
        "genres": "ragged",
    }
    read = _read_all(str(tmp_path), batch_size=100, deterministic=True, cycle_length=1)
    np.testing.assert_array_equal(read["user"].numpy(), columns["user"])
    np.testing.assert_array_equal(read["score"].numpy(), columns["score"])
    assert [s.decode() for s in read["name"].numpy()] == columns["name"].tolist()
    np.testing.assert_array_equal(read["fixed"].numpy(), columns["fixed"])
    assert read["history"].to_list() == [list(map(int, h)) for h in columns["history"]]
    assert [[g.decode() for g in row] for row in read["genres"].to_list()] == [list(g) for g in columns["genres"]]


def test_vectorised_encoder_matches_protobuf_on_edge_values():
    columns = {
        "ids": np.array([0, -1, 2**63 - 1, -(2**63), 127, 128, 300], dtype=np.int64),
        "x": np.array([0.0, -1.5, 3e38, 1e-38, np.inf, 2.0, 7.25], dtype=np.float32),
        "text": np.array(["", "héllo wörld", "x" * 200, "a", "日本", "b" * 127, "c" * 128]),
        "pair": np.array([[1, -2], [3, 4], [0, 0], [5, 2**40], [6, 7], [8, 9], [1, 1]]),
        "seq": object_column([[], [1, 2**35], [-3], [], [4] * 70, [5], [6, 7]]),
        "tags": object_column([(), ("a", ""), ("z" * 130,), ("é",), (), ("q",), ("r", "s")]),
        "weights": object_column([[0.5], [], [1.0, 2.0], [], [3.0] * 40, [4.0], []]),
    }
    schema = infer_schema(columns)
    records = encode_examples({c.name: column_values(c, columns[c.name]) for c in schema}, schema)
    for row, record in enumerate(records):
        expected = tf.train.Example()
        feature = expected.features.feature
        feature["ids"].int64_list.value.append(int(columns["ids"][row]))
        feature["x"].float_list.value.append(float(columns["x"][row]))
        feature["text"].bytes_list.value.append(columns["text"][row].encode())
        feature["pair"].int64_list.value.extend(int(v) for v in columns["pair"][row])
        feature["seq"].int64_list.value.extend(int(v) for v in columns["seq"][row])
        feature["tags"].bytes_list.value.extend(t.encode() for t in columns["tags"][row])
        feature["weights"].float_list.value.extend(columns["weights"][row])
        assert tf.train.Example.FromString(record) == expected, row


def test_padded_sequences_use_the_spec_length_and_padding(tmp_path):
    columns = {
        "item_id": np.arange(5, dtype=np.int64),
        "history": object_column([[1, 2, 3, 4, 5, 6], [7], [], [8, 9], [1, 2, 3]]),
    }
    spec = FeatureSpec(
        [Feature("item_id", "categorical", dtype="int64"), Feature("history", "sequence", dtype="int64", max_length=4)]
    )
    write_tfrecords(columns, str(tmp_path), spec=spec, num_shards=1)
    batch = next(iter(read_tfrecords(str(tmp_path), batch_size=5, sequences="padded", deterministic=True)))
    np.testing.assert_array_equal(
        batch["history"].numpy(), [[1, 2, 3, 4], [7, -1, -1, -1], [-1, -1, -1, -1], [8, 9, -1, -1], [1, 2, 3, -1]]
    )
    saved = load_schema(str(tmp_path)).feature_spec
    assert saved is not None and saved["history"].max_length == 4


def test_criteo_schema_round_trip_and_deterministic_order(tmp_path):
    rows = synthetic_ctr(3000, vocabulary_sizes=50, seed=1, chunk_size=1000)
    chunks = [{k: v[i : i + 1000] for k, v in rows.items()} for i in range(0, 3000, 1000)]
    schema = write_tfrecords(iter(chunks), str(tmp_path), spec=criteo_feature_spec(), num_shards=3)
    assert schema.column("C1").dtype == "int64" and schema.column("I1").dtype == "float32"
    first = _read_all(str(tmp_path), batch_size=512, deterministic=True, shuffle_files=True, seed=3)
    second = _read_all(str(tmp_path), batch_size=512, deterministic=True, shuffle_files=True, seed=3)
    np.testing.assert_array_equal(first["C7"].numpy(), second["C7"].numpy())
    order = np.lexsort([first[f"C{i}"].numpy() for i in range(1, 27)])
    expected = np.lexsort([rows[f"C{i}"] for i in range(1, 27)])
    for name in ("C1", "C26", "I13", "label"):
        np.testing.assert_array_equal(first[name].numpy()[order], rows[name][expected])


def _flip_a_byte(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x5A
    open(path, "wb").write(bytes(data))


def test_a_corrupt_shard_is_reported_by_name(tmp_path):
    schema = write_tfrecords({"x": np.arange(3000)}, str(tmp_path), num_shards=3)
    bad = os.path.join(str(tmp_path), schema.shards[1].file)
    _flip_a_byte(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match=schema.shards[1].file):
        _read_all(str(tmp_path), batch_size=256)


def test_skip_mode_counts_the_records_lost_and_warns(tmp_path, capfd):
    schema = write_tfrecords({"x": np.arange(3000)}, str(tmp_path), num_shards=3)
    _flip_a_byte(os.path.join(str(tmp_path), schema.shards[2].file))
    report = ReadReport()
    values = _read_all(str(tmp_path), batch_size=256, on_error="skip", report=report)["x"].numpy()
    assert len(values) + report.skipped_records == 3000 and report.skipped_records > 0
    assert list(report.bad_shards) == [os.path.join(str(tmp_path), schema.shards[2].file)]
    assert schema.shards[2].file in capfd.readouterr().err
    assert set(values) <= set(range(3000))


def test_a_truncated_shard_fails_before_reading(tmp_path):
    schema = write_tfrecords({"x": np.arange(3000)}, str(tmp_path), num_shards=3, compression="GZIP")
    path = os.path.join(str(tmp_path), schema.shards[0].file)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(TFRecordIntegrityError, match=schema.shards[0].file):
        read_tfrecords(str(tmp_path))
    report = ReadReport()
    values = _read_all(str(tmp_path), on_error="skip", report=report)["x"].numpy()
    assert len(values) + report.skipped_records == 3000 and report.skipped_records > 0


def _edit_schema(path, edit):
    schema_path = os.path.join(path, "schema.json")
    payload = json.load(open(schema_path))
    edit(payload)
    json.dump(payload, open(schema_path, "w"))


def test_a_feature_missing_from_a_record_names_the_feature(tmp_path):
    write_tfrecords({"x": np.arange(10)}, str(tmp_path), num_shards=1)
    _edit_schema(
        str(tmp_path),
        lambda p: p["columns"].append(
            {"name": "clicks", "dtype": "int64", "shape": "scalar", "length": None, "padding": 0}
        ),
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="clicks"):
        _read_all(str(tmp_path))


def test_a_dtype_mismatch_with_the_schema_names_the_feature(tmp_path):
    write_tfrecords({"x": np.arange(10), "y": np.ones(10, np.float32)}, str(tmp_path), num_shards=1)

    def to_float(payload):
        payload["columns"][0]["dtype"] = "float32"

    _edit_schema(str(tmp_path), to_float)
    with pytest.raises(tf.errors.InvalidArgumentError, match="x"):
        _read_all(str(tmp_path))


def test_writing_checks_data_against_the_spec(tmp_path):
    spec = FeatureSpec([Feature("user_id", "categorical", dtype="int64"), Feature("age", "numeric")])
    with pytest.raises(FeatureSpecError, match="'age' is missing"):
        write_tfrecords({"user_id": np.arange(3)}, str(tmp_path / "a"), spec=spec)
    with pytest.raises(FeatureSpecError, match="'user_id'.*int64"):
        write_tfrecords({"user_id": np.array(["a", "b", "c"]), "age": np.ones(3)}, str(tmp_path / "b"), spec=spec)
    chunks = iter([{"x": np.arange(3)}, {"x": np.array(["a", "b"])}])
    with pytest.raises(FeatureSpecError, match="'x'"):
        write_tfrecords(chunks, str(tmp_path / "c"))


def test_empty_input_and_missing_directory_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="empty input"):
        write_tfrecords(iter([]), str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="no TFRecord schema"):
        read_tfrecords(str(tmp_path / "nowhere"))
    write_tfrecords({"x": np.arange(3)}, str(tmp_path / "once"), num_shards=1)
    with pytest.raises(ValueError, match="overwrite"):
        write_tfrecords({"x": np.arange(3)}, str(tmp_path / "once"), num_shards=1)
    with pytest.raises(KeyError, match="'nope'"):
        read_tfrecords(str(tmp_path / "once"), columns=["nope"])
