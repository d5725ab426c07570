"""Fault tests: kills (SIGKILL, SIGTERM) and full disks during every writer never leave an
output that looks complete, and a re-run starts clean and says so (docs/failures.md).

Each case runs the real code in a subprocess on tiny synthetic data. Full disks are
simulated with ``ulimit -f`` (a file-size limit; the writers ignore SIGXFSZ so the write
fails with EFBIG instead of killing the process).
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.core.errors import InputError, StorageError
from tfrecs.export import write_version
from tfrecs.pipelines import load_schema, write_tfrecords

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERS = os.path.join(REPO, "tests", "workers")
TIMEOUT = 120
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
SMALL = ("--num-interactions", "1500", "--num-items", "100", "--shards", "2")
SCRIPT_ARGS = {  # one case per pipeline script; the split ones write several parts
    "build_tfrecords": ("--dataset", "synthetic-implicit", "--split", "random", *SMALL),
    "sample_negatives": ("--dataset", "synthetic-implicit", "--negatives", "2", *SMALL),
    "window_sequences": ("--dataset", "synthetic-sequences", "--max-len", "10", *SMALL),
}


def _script(name):
    return os.path.join(REPO, "pipelines", f"{name}.py")


def _leftovers(output):
    """Hidden staging directories next to ``output``."""
    parent, name = os.path.split(str(output))
    return [entry for entry in os.listdir(parent) if entry.startswith(f".{name}.")]


def _is_complete(output):
    """Every directory of the output holds its schema and every shard the schema lists."""
    directories = (
        [str(output)]
        if os.path.exists(os.path.join(str(output), "schema.json"))
        else [os.path.join(str(output), d) for d in sorted(os.listdir(str(output)))]
    )
    for directory in directories:
        schema = load_schema(directory)
        assert all(os.path.getsize(os.path.join(directory, s.file)) == s.bytes for s in schema.shards)
    return True


def _launch_paused(marker, *command):
    process = subprocess.Popen(
        [sys.executable, *command], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + TIMEOUT
    while not os.path.exists(marker):
        if process.poll() is not None:
            raise AssertionError(
                f"worker exited ({process.returncode}) before pausing: {process.stderr.read()[-2000:]}"
            )
        assert time.time() < deadline, "worker never reached the pause point"
        time.sleep(0.05)
    return process


def _launch_script_paused(tmp_path, name, *args):
    marker = str(tmp_path / "paused")
    return _launch_paused(marker, os.path.join(WORKERS, "fault_pause.py"), marker, name, *args)


def _stop(process, signum):
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, err


def _run(*command, limit_kb=None):
    if limit_kb is not None:
        command = ("bash", "-c", f'ulimit -f {limit_kb}; exec "$@"', "bash", *command)
    return subprocess.run(list(command), env=ENV, capture_output=True, text=True, timeout=TIMEOUT)


def _error_lines(stderr):
    """Our error lines and any traceback (TensorFlow's own C++ log lines are not ours)."""
    return [
        line
        for line in stderr.splitlines()
        if " error: " in f" {line}" and not line.startswith("20") or line.startswith("Traceback")
    ]


def _run_in_process(name, *args):
    """Runs a pipeline script's ``main`` in this process (TensorFlow is already loaded)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", _script(name))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main([str(a) for a in args])


@pytest.mark.parametrize("name", sorted(SCRIPT_ARGS))
def test_sigkill_mid_write_leaves_no_output_and_the_rerun_starts_clean(tmp_path, name):
    output = tmp_path / "out"
    process = _launch_script_paused(tmp_path, name, *SCRIPT_ARGS[name], "--output", str(output))
    code, _ = _stop(process, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert not os.path.exists(output)  # nothing under the output's name ...
    assert _leftovers(output)  # ... only the hidden staging directory of the killed run

    rerun = _run(sys.executable, _script(name), *SCRIPT_ARGS[name], "--output", str(output))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "the incomplete output of an interrupted write; starting clean" in rerun.stderr
    assert _is_complete(output) and not _leftovers(output)


@pytest.mark.parametrize("name", sorted(SCRIPT_ARGS))
def test_sigterm_mid_write_removes_the_partial_output_and_says_so(tmp_path, name):
    output = tmp_path / "out"
    process = _launch_script_paused(tmp_path, name, *SCRIPT_ARGS[name], "--output", str(output))
    code, err = _stop(process, signal.SIGTERM)
    assert code == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        f"{name}.py: interrupted by SIGTERM: the partial output was removed and "
        "nothing was written; run again to start clean"
    )
    assert "Traceback" not in err
    assert not os.path.exists(output) and not _leftovers(output)


def test_sigkill_of_an_overwrite_keeps_the_previous_output_whole(tmp_path):
    output = tmp_path / "out"
    args = SCRIPT_ARGS["sample_negatives"]
    _run_in_process("sample_negatives", *args, "--output", output)
    before = load_schema(str(output)).to_json()
    process = _launch_script_paused(
        tmp_path, "sample_negatives", *args, "--seed", "3", "--overwrite", "--output", str(output)
    )
    _stop(process, signal.SIGKILL)
    assert load_schema(str(output)).to_json() == before and _is_complete(output)


def test_full_disk_while_writing_tfrecords_is_one_line_naming_the_output(tmp_path):
    output = tmp_path / "out"
    result = _run(
        sys.executable,
        _script("build_tfrecords"),
        "--dataset",
        "synthetic-implicit",
        "--num-interactions",
        "30000",
        "--num-items",
        "500",
        "--shards",
        "2",
        "--output",
        str(output),
        limit_kb=100,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"build_tfrecords.py: error: {output}: cannot write: "), lines
    assert "File too large" in lines[0]
    assert not os.path.exists(output) and not _leftovers(output)


def _export(root, *extra, limit_kb=None):
    return _run(sys.executable, os.path.join(WORKERS, "fault_export.py"), str(root), *extra, limit_kb=limit_kb)


def test_full_disk_during_an_export_is_one_line_and_leaves_no_version(tmp_path):
    root = tmp_path / "exports"
    result = _export(root, "--size", "200000", limit_kb=200)  # an 800 KB table over a 200 KB limit
    assert result.returncode == 2, result.stderr[-2000:]
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"error: {root / 'tiny' / '1'}: cannot write the export: "), lines
    assert os.listdir(root / "tiny") == []  # no version, no temporary directory


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_export_leaves_no_version_and_the_rerun_starts_clean(tmp_path, signum):
    root = tmp_path / "exports"
    marker = str(tmp_path / "paused")
    process = _launch_paused(marker, os.path.join(WORKERS, "fault_export.py"), str(root), "--pause", marker)
    code, _ = _stop(process, signum)
    assert code == -signum
    entries = os.listdir(root / "tiny")
    assert entries and all(entry.startswith(".tmp-1-") for entry in entries)  # hidden from TF Serving
    assert not os.path.exists(root / "models.config")

    rerun = _export(root)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "the incomplete export of an interrupted run; starting clean" in rerun.stderr
    assert os.listdir(root / "tiny") == ["1"] and "tiny" in open(root / "models.config").read()


def test_an_unwritable_export_root_or_output_is_one_storage_error_naming_it(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match=f"^{blocker / 'root' / 'tiny'}: cannot create the export directory: "):
        write_version(str(blocker / "root"), "tiny", lambda directory: None)
    with pytest.raises(StorageError, match=f"^{blocker}: the export root exists and is not a directory"):
        write_version(str(blocker), "tiny", lambda directory: None)
    with pytest.raises(StorageError, match=f"^{blocker}: cannot create the output's parent directory"):
        write_tfrecords({"x": np.arange(3)}, str(blocker / "out"))
    with pytest.raises(StorageError, match=f"^{blocker}: exists and is not a directory"):
        write_tfrecords({"x": np.arange(3)}, str(blocker))
    assert blocker.read_text() == "not a directory"


def test_a_failed_write_removes_its_staging_directory(tmp_path):
    chunks = iter([{"x": np.arange(3)}, {"x": np.array(["a", "b"])}])  # the second chunk is bad
    with pytest.raises(ValueError, match="'x'"):
        write_tfrecords(chunks, str(tmp_path / "out"))
    assert os.listdir(tmp_path) == []
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a tfrecs TFRecord output"):
        write_tfrecords({"x": np.arange(3)}, str(tmp_path / "mine"), overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_batch_larger_than_the_data_with_drop_remainder_names_both(tmp_path):
    sys.path.insert(0, WORKERS)
    import tiny_models as tm

    from tfrecs import training

    model = tm.TinyRanking()
    model.compile(optimizer="adam")
    data = tf.data.Dataset.from_tensor_slices(tm.interactions(10)).batch(64, drop_remainder=True)
    with pytest.raises(
        InputError,
        match=r"train_data yields no batch: batch size 64 with drop_remainder=True is "
        r"larger than the data \(10 rows\)",
    ):
        training.fit(model, data, epochs=1)
    unknown = tf.data.Dataset.from_tensor_slices(tm.interactions(10)).filter(lambda r: True).batch(64, True)
    with pytest.raises(InputError, match="batch size 64 with drop_remainder=True.*fewer rows than one batch"):
        training.fit(model, unknown.prefetch(2), epochs=1)
    write_tfrecords(tm.interactions(10), str(tmp_path / "rows"), num_shards=1)
    from tfrecs.pipelines import read_tfrecords

    with pytest.raises(InputError, match=r"batch_size=64 with drop_remainder=True is larger than the 10 records"):
        read_tfrecords(str(tmp_path / "rows"), batch_size=64, drop_remainder=True)
