"""TF Serving layout: integer versions written atomically, models.config, warmup records, ScaNN tuning."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tfrecs  # noqa: F401
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfrecs.export import (
    model_versions,
    read_warmup,
    tune_scann,
    write_models_config,
    write_version,  # noqa: E402
    write_warmup,
)


def _write_file(name):
    def write(directory):
        with open(os.path.join(directory, name), "w") as handle:
            handle.write("done")

    return write


def test_versions_are_integers_counted_up_and_listed_in_models_config(tmp_path):
    root = str(tmp_path)
    assert write_version(root, "two_tower", _write_file("a")).endswith(os.path.join("two_tower", "1"))
    assert write_version(root, "two_tower", _write_file("b")).endswith(os.path.join("two_tower", "2"))
    write_version(root, "deepfm", _write_file("c"), version=7)
    assert model_versions(os.path.join(root, "two_tower")) == [1, 2]
    config = model_server_config_pb2.ModelServerConfig()
    with open(write_models_config(root)) as handle:
        text_format.Parse(handle.read(), config)
    entries = {entry.name: entry for entry in config.model_config_list.config}
    assert sorted(entries) == ["deepfm", "two_tower"]
    assert entries["two_tower"].base_path == "/models/two_tower"
    assert entries["deepfm"].model_platform == "tensorflow"
    assert entries["deepfm"].model_version_policy.latest.num_versions == 1
    with open(write_models_config(root, base_path_prefix=None)) as handle:
        assert f'base_path: "{os.path.join(root, "deepfm")}"' in handle.read()


def test_existing_bad_versions_and_names_are_refused(tmp_path):
    root = str(tmp_path)
    write_version(root, "m", _write_file("a"), version=3)
    with pytest.raises(ValueError, match=r"version 3 of model 'm' already exists at .*\(next free: 4\)"):
        write_version(root, "m", _write_file("b"), version=3)
    for bad in (0, -1, "2", 1.5, True):
        with pytest.raises(ValueError, match="must be a positive integer"):
            write_version(root, "m", _write_file("b"), version=bad)
    with pytest.raises(ValueError, match="model_name='../x' must be a plain name"):
        write_version(root, "../x", _write_file("b"))


def test_a_failing_export_leaves_nothing_behind(tmp_path):
    def write(directory):
        _write_file("saved_model.pb")(directory)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_version(str(tmp_path), "m", write)
    assert os.listdir(tmp_path / "m") == []


def test_a_killed_export_leaves_no_version_directory_and_is_cleaned_up_later(tmp_path):
    """The writer is SIGKILLed half-way through writing; a server would see no version."""
    layout_file = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tfrecs", "export", "layout.py"
    )
    script = textwrap.dedent(f"""
        import importlib.util, os, sys, time
        spec = importlib.util.spec_from_file_location("layout", {layout_file!r})   # no TensorFlow import: fast
        layout = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(layout)
        def write(directory):
            open(os.path.join(directory, "saved_model.pb"), "w").write("half")
            print("writing", flush=True)
            time.sleep(120)
        layout.write_version({str(tmp_path)!r}, "m", write)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    leftovers = os.listdir(tmp_path / "m")
    assert model_versions(str(tmp_path / "m")) == []
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-1-")  # hidden, not an integer
    assert write_version(str(tmp_path), "m", _write_file("ok")).endswith("1")
    assert os.listdir(tmp_path / "m") == ["1"]  # the dead writer's files are gone


def test_warmup_records_round_trip_as_prediction_logs(tmp_path):
    requests = [
        {"user_id": np.asarray([b"196", b"7"], dtype=object), "age": np.asarray([20, 30], np.int64)},
        {
            "user_id": np.asarray([b"1"], dtype=object),
            "age": np.asarray([5], np.int64),
            "exclude_item_ids": np.asarray([[b"50"]], dtype=object),
        },
    ]
    path = write_warmup(str(tmp_path), "two_tower", requests)
    assert path == os.path.join(str(tmp_path), "assets.extra", "tf_serving_warmup_requests")
    records = read_warmup(str(tmp_path))
    assert [signature for signature, _ in records] == ["serving_default", "serving_default"]
    for (_, got), want in zip(records, requests):
        assert sorted(got) == sorted(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    with pytest.raises(ValueError, match="at least one request"):
        write_warmup(str(tmp_path), "two_tower", [])


def test_scann_parameters_follow_the_candidate_count_and_can_be_overridden():
    million = tune_scann(1_000_000, 10)
    assert (million.num_leaves, million.num_leaves_to_search, million.num_reordering_candidates) == (1000, 50, 250)
    assert (million.dimensions_per_block, million.anisotropic_quantization_threshold) == (2, 0.2)
    small = tune_scann(5000, 10)
    assert small.num_leaves == 71
    # the searched leaves must hold about 4x the re-scored candidates: 1000 of 5000 points
    assert small.num_leaves_to_search == 15
    assert tune_scann(500, 10).num_leaves_to_search == 22  # every leaf: 4 x 250 > 500 points
    assert tune_scann(1_000_000, 10, num_leaves=2000, num_leaves_to_search=20).num_leaves_to_search == 20
    assert tune_scann(10_000, 50).num_reordering_candidates == 1250
    assert tune_scann(1000, 10, anisotropic_quantization_threshold="none").anisotropic_quantization_threshold is None
    with pytest.raises(ValueError, match=r"unknown ScaNN parameter\(s\) \['leaves'\]"):
        tune_scann(1000, 10, leaves=3)
    with pytest.raises(ValueError, match="num_leaves_to_search=40 must be between 1 and num_leaves=30"):
        tune_scann(1000, 10, num_leaves=30, num_leaves_to_search=40)
    with pytest.raises(ValueError, match="num_reordering_candidates=5 must be at least k=10"):
        tune_scann(1000, 10, num_reordering_candidates=5)
