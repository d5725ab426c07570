"""Resumable fits: a killed run restarts from its backup and ends exactly where an unbroken one does."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
import tiny_models as tm  # noqa: E402

from tfrecs import training  # noqa: E402

WORKERS = os.path.join(os.path.dirname(__file__), "workers")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 120


def _launch(run_dir, result, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [
        sys.executable,
        os.path.join(WORKERS, "resumable_fit.py"),
        "--run-dir",
        str(run_dir),
        "--result",
        str(result),
    ]
    log = open(str(result) + ".log", "w")
    return subprocess.Popen(command + list(extra), env=env, stdout=log, stderr=subprocess.STDOUT)


def _finish(process, result):
    try:
        code = process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0, open(str(result) + ".log").read()[-3000:]
    with open(result) as f:
        return json.load(f)


def _wait_for(path, process):
    deadline = time.time() + TIMEOUT
    while not os.path.exists(path):
        assert process.poll() is None, f"worker exited ({process.returncode}) before pausing"
        assert time.time() < deadline, "worker never reached the pause point"
        time.sleep(0.1)


def test_killed_fit_resumes_from_backup_and_matches_unbroken_run(tmp_path):
    unbroken = _launch(tmp_path / "unbroken", tmp_path / "unbroken.json")
    crashing = _launch(tmp_path / "resumed", tmp_path / "crashed.json", "--pause-epoch", "2", "--pause-batch", "3")
    try:
        _wait_for(str(tmp_path / "crashed.json") + ".paused", crashing)
        crashing.send_signal(signal.SIGKILL)  # mid-epoch 2, after the epoch-1 backup
        crashing.wait(timeout=TIMEOUT)
    finally:
        if crashing.poll() is None:
            crashing.kill()
            crashing.wait()
    assert crashing.returncode == -signal.SIGKILL
    assert os.path.isdir(tmp_path / "resumed" / "backup")

    resumed = _finish(_launch(tmp_path / "resumed", tmp_path / "resumed.json"), tmp_path / "resumed.json")
    reference = _finish(unbroken, tmp_path / "unbroken.json")

    assert reference["epochs_run"] == [0, 1, 2, 3, 4]
    assert resumed["epochs_run"] == [2, 3, 4]  # restarted the killed epoch, not from scratch
    assert resumed["optimizer_steps"] == reference["optimizer_steps"] == 5 * 8
    for name in ("loss", "auc", "val_loss", "val_auc", "learning_rate"):
        assert resumed["last"][name] == pytest.approx(reference["last"][name], abs=1e-6), name
    for got, expected in zip(resumed["weights"], reference["weights"]):
        np.testing.assert_allclose(np.array(got), np.array(expected), atol=1e-6)

    run_dir = tmp_path / "resumed"
    assert not os.path.exists(run_dir / "backup" / "chief" / "checkpoint")  # removed after success
    assert os.path.exists(run_dir / "checkpoints" / "last.index")
    assert os.path.exists(run_dir / "checkpoints" / "best.index")
    assert any(name.startswith("events") for name in os.listdir(run_dir / "logs" / "train"))


def _kill_when_paused(process, result):
    try:
        _wait_for(str(result) + ".paused", process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL


def test_killed_early_stopping_run_keeps_its_best_epoch_and_ends_like_an_unbroken_run(tmp_path):
    # val_score per epoch: best at epoch 2; patience 3 stops after epoch 5. The kill falls in
    # epoch 4, after the best epoch: a resume that forgot it would restore epoch 5's weights.
    scores = "0.30,0.50,0.40,0.35,0.45,0.20,0.60,0.10"
    args = ("--epochs", "8", "--scores", scores, "--patience", "3")
    unbroken = _launch(tmp_path / "unbroken", tmp_path / "unbroken.json", *args)
    crashing = _launch(
        tmp_path / "resumed", tmp_path / "crashed.json", *args, "--pause-epoch", "3", "--pause-batch", "2"
    )
    _kill_when_paused(crashing, tmp_path / "crashed.json")
    assert os.path.exists(tmp_path / "resumed" / "backup" / "state" / "state.json")

    resumed = _finish(_launch(tmp_path / "resumed", tmp_path / "resumed.json", *args), tmp_path / "resumed.json")
    reference = _finish(unbroken, tmp_path / "unbroken.json")

    assert resumed["epochs_run"] == [3, 4]  # the killed epoch again, then the early stop
    assert reference["epochs"] == resumed["epochs"] == [0, 1, 2, 3, 4]  # epochs counted from the start
    assert resumed["history"]["val_score"] == reference["history"]["val_score"] == [0.30, 0.50, 0.40, 0.35, 0.45]
    for name in ("loss", "val_loss", "val_auc"):
        np.testing.assert_allclose(resumed["history"][name], reference["history"][name], atol=1e-6, err_msg=name)
    assert resumed["final_val_auc"] == pytest.approx(reference["final_val_auc"], abs=1e-6)
    for got, expected in zip(resumed["weights"], reference["weights"]):  # epoch 2's weights, restored
        np.testing.assert_allclose(np.array(got), np.array(expected), atol=1e-6)
    log = open(str(tmp_path / "resumed.json") + ".log").read()
    assert "resuming" in log and "at epoch 4: 3 epoch(s) restored, best so far epoch 2 (val_score = 0.5)" in log
    assert not os.path.exists(tmp_path / "resumed" / "backup" / "state")  # removed after the complete fit


def test_fit_stops_early_on_a_validation_ranking_metric(tmp_path, capsys):
    rows = tm.interactions(64, seed=9)
    model = tm.TinyRanking()
    model.compile(optimizer=training.make_optimizer("adam", 0.01, schedule="cosine", decay_steps=20))
    ndcg = iter([0.30, 0.35, 0.33, 0.32, 0.31, 0.30, 0.29, 0.28])  # best after epoch 2
    history = training.fit(
        model,
        tm.dataset(rows, 16),
        validation_data=tm.dataset(rows, 16),
        epochs=8,
        run_dir=tmp_path,
        monitor="val_ndcg@10",
        patience=2,
        evaluate_fn=lambda m: {"ndcg@10": next(ndcg)},
        verbose=1,
    )
    assert history.history["val_ndcg@10"] == pytest.approx([0.30, 0.35, 0.33, 0.32])
    assert "val_auc" in history.history and "learning_rate" in history.history
    rates = history.history["learning_rate"]
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))  # schedule applied
    assert "Epoch 1/8" in capsys.readouterr().out  # Keras progress bar
    best = tm.TinyRanking()
    best.build_from_batch(next(iter(tm.dataset(rows, 16))))
    best.load_weights(str(tmp_path / "checkpoints" / "best"))
    # EarlyStopping restored the best epoch's weights, the same ones the best checkpoint holds.
    for a, b in zip(best.trainable_variables, model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy())
