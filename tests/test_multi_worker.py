"""Two MultiWorkerMirroredStrategy processes on 127.0.0.1: identical weights, and resume after a kill.

Each worker is a separate Python process (tests/workers/multi_worker_fit.py) configured
only through TF_CONFIG, on ports picked free at run time. A killed worker makes the other
one fail (MultiWorkerMirroredStrategy cannot continue without it); the job is then started
again, as a cluster manager would, and resumes from the BackupAndRestore backup.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tf_keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
import tiny_models as tm  # noqa: E402
from factories.cluster import free_ports  # noqa: E402

WORKER = os.path.join(os.path.dirname(__file__), "workers", "multi_worker_fit.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 150
EPOCHS = 3


def _launch_cluster(run_dir, out, *extra):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
        env["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
        command = [sys.executable, WORKER, "--run-dir", str(run_dir), "--out", str(out), "--epochs", str(EPOCHS)]
        log = open(os.path.join(str(out) + f".worker{index}.log"), "w")
        processes.append(subprocess.Popen(command + list(extra), env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def _stop(processes):
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait()


def _log(out, index):
    with open(str(out) + f".worker{index}.log") as f:
        return f.read()[-3000:]


def _wait_ok(processes, out):
    try:
        deadline = time.time() + TIMEOUT
        for index, process in enumerate(processes):
            code = process.wait(timeout=max(1, deadline - time.time()))
            assert code == 0, _log(out, index)
    finally:
        _stop(processes)


def _weights(out, kind, index):
    with np.load(os.path.join(out, f"{kind}_{index}.npz")) as data:
        return [data[f"w{i}"] for i in range(len(data.files))]


def _epochs(out, index):
    with open(os.path.join(out, f"epochs_{index}.txt")) as f:
        return [int(line) for line in f.read().split()]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    base = tmp_path_factory.mktemp("multi_worker")
    out = base / "out"
    _wait_ok(_launch_cluster(base / "run", out), out)
    return out


def test_two_workers_end_with_identical_weights_equal_to_one_device(unbroken):
    final = [_weights(unbroken, "final", i) for i in range(2)]
    initial = _weights(unbroken, "init", 0)
    assert _epochs(unbroken, 0) == _epochs(unbroken, 1) == list(range(EPOCHS))
    for a, b in zip(*final):
        np.testing.assert_array_equal(a, b)
    assert max(float(np.abs(a - b).max()) for a, b in zip(final[0], initial)) > 1e-3

    # The same global batches on one device, from the same initial weights.
    data = tm.dataset(tm.interactions(64, seed=3), 16)
    model = tm.TinyRanking()
    model.compile(optimizer=tf_keras.optimizers.SGD(0.5))
    model.build_from_batch(next(iter(data)))
    for variable, value in zip(model.trainable_variables, initial):
        variable.assign(value)
    model.fit(data, epochs=EPOCHS, verbose=0)
    for got, expected in zip(final[0], model.trainable_variables):
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)


def test_killed_worker_job_resumes_from_backup(unbroken, tmp_path):
    run_dir, first, second = tmp_path / "run", tmp_path / "first", tmp_path / "second"
    processes = _launch_cluster(run_dir, first, "--pause-epoch", "1", "--pause-worker", "1")
    try:
        deadline = time.time() + TIMEOUT
        while not os.path.exists(first / "paused_1"):
            assert all(p.poll() is None for p in processes), _log(first, 0) + _log(first, 1)
            assert time.time() < deadline, "worker 1 never reached epoch 1"
            time.sleep(0.1)
        processes[1].send_signal(signal.SIGKILL)  # mid-epoch 1, after the epoch-0 backup
        processes[1].wait(timeout=30)
        # The survivor must fail (missed heartbeats abort its collectives), not hang.
        assert processes[0].wait(timeout=60) != 0
    finally:
        _stop(processes)
    assert os.path.isdir(run_dir / "backup")

    _wait_ok(_launch_cluster(run_dir, second), second)
    for index in range(2):
        assert _epochs(second, index) == list(range(1, EPOCHS))  # resumed at epoch 1, not 0
    resumed = [_weights(second, "final", i) for i in range(2)]
    for a, b in zip(*resumed):
        np.testing.assert_array_equal(a, b)
    # Same seed, same data: the interrupted job ends where the unbroken one did.
    np.testing.assert_array_equal(_weights(first, "init", 0)[0], _weights(unbroken, "init", 0)[0])
    for got, expected in zip(resumed[0], _weights(unbroken, "final", 0)):
        np.testing.assert_allclose(got, expected, atol=1e-6)
