"""Killed and stopped ``tfrecs train --run-dir`` runs resume and end with an unbroken run's figures.

The training views order every epoch by ``(seed, epoch)`` (``epoch_shuffled_batches``) and
``tfrecs.training.fit`` pins the epoch (``EpochSeed``), so where the kill fell does not matter.
The CLI tests run a tiny DeepFM on ML-100K (about 1 s per epoch) in subprocesses: an unbroken
run, a run killed with SIGKILL after epoch 2's backup and re-run, a run stopped with SIGTERM
and re-run. The library tests show the same at the ``fit`` level with a tiny model, and that
the old ``Dataset.shuffle(reshuffle_each_iteration=True)`` does not resume to the same weights.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
import tiny_models as tm  # noqa: E402

from tfrecs import training  # noqa: E402
from tfrecs.pipelines.negative_sampling import UniformSampler, sample_negatives  # noqa: E402
from tfrecs.pipelines.transforms import epoch_key, epoch_shuffled_batches  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 240
EPOCHS = 6
COMMAND = [
    "train",
    "--model",
    "deepfm",
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "4096",
    "--set",
    "hidden_units=16",
    "--set",
    "embedding_dim=4",
    "--set",
    "dropout=0",  # dropout masks come from stateful RNG ops that restart with the process
    "--set",
    f"patience={EPOCHS}",
    "--verbose",
    "0",
]
TIMING = ("seconds_per_epoch",)


def _start(run_dir, log):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="2")
    out, err = open(f"{log}.out", "w"), open(f"{log}.err", "w")
    command = [sys.executable, "-m", "tfrecs.cli", *COMMAND, "--run-dir", str(run_dir)]
    return subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=ROOT)


def _wait(process):
    try:
        return process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _figures(process, log):
    code = _wait(process)
    err = open(f"{log}.err").read()
    assert code == 0, err[-3000:]
    lines = [line for line in open(f"{log}.out").read().splitlines() if line.startswith("{")]
    figures = json.loads(lines[-1])
    return {k: v for k, v in figures.items() if k not in TIMING}, err


def _wait_for_epoch(run_dir, epoch, process):
    """Polls until the resume state of 0-based ``epoch`` is written (so epoch ``epoch - 1``'s backup is complete)."""
    path = os.path.join(run_dir, "backup", "state", "state.json")
    deadline = time.time() + TIMEOUT
    while True:
        assert process.poll() is None, f"the run ended ({process.returncode}) before epoch {epoch + 1}"
        assert time.time() < deadline, "the run never reached the epoch"
        try:
            with open(path) as handle:
                if json.load(handle)["epoch"] >= epoch:
                    return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)


def _assert_resumed(err, run_dir):
    match = re.search(
        rf"tfrecs: resuming {re.escape(str(run_dir))}/backup at epoch (\d+): (\d+) epoch\(s\) restored", err
    )
    assert match, err[-3000:]
    epoch, restored = int(match.group(1)), int(match.group(2))
    assert restored == epoch - 1 and 3 <= epoch <= EPOCHS  # after epoch 2's backup, before the end


def _assert_same_figures(got, expected):
    assert got.keys() == expected.keys()
    assert got["epochs"] == expected["epochs"] == EPOCHS  # counted from the original start
    assert got["best_epoch"] == expected["best_epoch"]
    for name in ("auc", "logloss", "gauc"):
        assert got[name] == pytest.approx(expected[name], abs=1e-6), name


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    """The figures of an unbroken run, started at once and read on first use."""
    folder = tmp_path_factory.mktemp("unbroken")
    process = _start(folder / "run", folder / "log")
    figures = {}

    def read():
        if not figures:
            figures.update(_figures(process, folder / "log")[0])
        return figures

    yield read
    if process.poll() is None:
        process.kill()
        process.wait()


def test_train_killed_with_sigkill_resumes_and_ends_like_an_unbroken_run(tmp_path, unbroken):
    run_dir = tmp_path / "run"
    crashing = _start(run_dir, tmp_path / "killed")
    try:
        _wait_for_epoch(run_dir, 2, crashing)
        crashing.send_signal(signal.SIGKILL)
    finally:
        _wait(crashing)
    assert crashing.returncode == -signal.SIGKILL
    assert os.path.isdir(run_dir / "backup" / "chief")

    resumed, err = _figures(_start(run_dir, tmp_path / "resumed"), tmp_path / "resumed")
    _assert_resumed(err, run_dir)
    _assert_same_figures(resumed, unbroken())
    assert not os.path.exists(run_dir / "backup" / "state")  # removed after the complete run


def test_train_stopped_with_sigterm_says_so_keeps_its_backup_and_resumes(tmp_path, unbroken):
    run_dir = tmp_path / "run"
    stopping = _start(run_dir, tmp_path / "stopped")
    try:
        _wait_for_epoch(run_dir, 2, stopping)
        stopping.send_signal(signal.SIGTERM)
    finally:
        code = _wait(stopping)
    err = open(f"{tmp_path / 'stopped'}.err").read()
    assert code == 143, err[-3000:]
    stops = [line for line in err.splitlines() if "stopped by SIGTERM" in line]
    assert len(stops) == 1 and stops[0].startswith(f"tfrecs: stopped by SIGTERM; {run_dir}/backup keeps"), err
    assert "run the same command again to resume" in stops[0]
    assert "Traceback" not in err
    assert os.path.isdir(run_dir / "backup" / "chief")

    resumed, err = _figures(_start(run_dir, tmp_path / "resumed"), tmp_path / "resumed")
    _assert_resumed(err, run_dir)
    _assert_same_figures(resumed, unbroken())


def test_train_past_a_file_size_limit_is_one_line_naming_the_file(tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # the checkpoints need more

    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "tfrecs.cli", *COMMAND, "--epochs", "1", "--run-dir", str(tmp_path / "run")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=limit)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("tfrecs: error:")]
    assert len(errors) == 1 and "File too large (disk full or a file-size limit?)" in errors[0], result.stderr
    assert str(tmp_path / "run") in errors[0] and "Traceback" not in result.stderr


class _Killed(Exception):
    pass


class _Crash(tf_keras.callbacks.Callback):
    """Stands in for a kill: raises at the start of ``epoch`` (after the previous epoch's backup)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Killed


def _library_fit(run_dir, keyed, crash_at=None):
    """A fresh tiny model and a fresh dataset (as a new process has), fitted 4 epochs."""
    tf_keras.utils.set_random_seed(0)
    rows = tm.interactions(256, seed=3)
    if keyed:
        train = epoch_shuffled_batches(rows, 32, seed=11)
    else:
        train = tf.data.Dataset.from_tensor_slices(rows).shuffle(256, seed=11, reshuffle_each_iteration=True).batch(32)
    model = tm.TinyRanking()
    model.compile(optimizer=training.make_optimizer("adam", 0.05))
    extra = [_Crash(crash_at)] if crash_at is not None else []
    try:
        history = training.fit(
            model, train, epochs=4, run_dir=run_dir, tensorboard=False, patience=None, verbose=0, callbacks=extra
        )
    except _Killed:
        return None
    return [v.numpy() for v in model.trainable_variables], history


@pytest.mark.parametrize("keyed", [True, False], ids=["epoch-keyed", "reshuffle_each_iteration"])
def test_fit_resumed_after_a_kill_matches_an_unbroken_fit_with_the_epoch_keyed_shuffle(tmp_path, keyed):
    reference, _ = _library_fit(str(tmp_path / "unbroken"), keyed)
    assert _library_fit(str(tmp_path / "resumed"), keyed, crash_at=2) is None
    assert os.path.isdir(tmp_path / "resumed" / "backup" / "chief")
    resumed, history = _library_fit(str(tmp_path / "resumed"), keyed)
    assert history.epoch == [0, 1, 2, 3]
    same = all(np.array_equal(a, b) for a, b in zip(resumed, reference))
    # The epoch-keyed order resumes exactly; a reshuffling Dataset.shuffle restarts its orders.
    assert same is keyed


def test_epoch_keyed_order_and_negatives_depend_only_on_seed_and_epoch():
    rows = tm.interactions(100, seed=1)

    def pipeline():
        batches = epoch_shuffled_batches({"user_id": rows["user_id"], "item_id": rows["item_id"]}, 16, seed=5)
        return sample_negatives(batches, UniformSampler(tm.NUM_ITEMS), num_negatives=2, seed=5)

    def read(dataset):
        return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]

    counted = pipeline()  # unpinned: every iteration is the next epoch
    epochs = [read(counted) for _ in range(3)]
    assert not np.array_equal(epochs[0][0]["item_id"], epochs[1][0]["item_id"])
    fresh = pipeline()  # a new process resuming at epoch 2
    key = epoch_key(fresh)
    key.pin(2)
    for got, expected in zip(read(fresh), epochs[2]):
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert sorted(np.concatenate([b["item_id"][b["label"] == 1] for b in epochs[2]])) == sorted(rows["item_id"])
    assert fresh.cardinality().numpy() == 7
