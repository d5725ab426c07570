"""ParameterServerStrategy on a real local cluster: sharded embedding tables, training, export.

Five processes on 127.0.0.1, configured only through TF_CONFIG on ports picked free at run
time: 2 parameter servers and 2 workers (tests/workers/parameter_server_task.py, which runs
``training.serve_cluster_task()``) and the chief (tests/workers/parameter_server_fit.py),
which trains DeepFM through ``tfrecs.training.fit`` with ``strategy="parameter_server"`` and
exports it with ``export_ranking``. The chief runs in its own process because connecting to a
cluster changes TensorFlow's global eager context. Every process gets its own session and is
killed with its whole process group at the end, whatever happens.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tfrecs  # noqa: F401  - before TensorFlow
import tensorflow as tf
from tfrecs import training
from tfrecs.core.errors import InputError
from tfrecs.export import read_warmup

from factories.cluster import free_ports

WORKERS = os.path.join(os.path.dirname(__file__), "workers")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 150  # seconds for the whole job (two-core CI box: five TensorFlow processes start at once)


def _cluster():
    ports = iter(f"127.0.0.1:{port}" for port in free_ports(5))
    return {
        "chief": [next(ports)],
        "worker": [next(ports), next(ports)],
        "ps": [next(ports), next(ports)],
    }


def _start(script, cluster, kind, index, out, *arguments):
    env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))
    env["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    env["CUDA_VISIBLE_DEVICES"] = ""
    log = open(os.path.join(out, f"{kind}{index}.log"), "w")
    process = subprocess.Popen(
        [sys.executable, os.path.join(WORKERS, script), *arguments],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed as a whole
    )
    process.name, process.log = f"{kind}{index}", log
    return process


def _kill(processes):
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for process in processes:
        process.wait(timeout=30)
        process.log.close()


def _log(out, name):
    with open(os.path.join(out, f"{name}.log")) as f:
        return f"--- {name} ---\n" + f.read()[-3000:]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("parameter_server"))
    cluster = _cluster()
    processes = []
    started = time.time()
    try:
        for kind in ("ps", "worker"):
            for index in range(2):
                processes.append(_start("parameter_server_task.py", cluster, kind, index, out))
        chief = _start("parameter_server_fit.py", cluster, "chief", 0, out, "--out", out)
        processes.append(chief)
        while chief.poll() is None:
            dead = [p for p in processes[:-1] if p.poll() is not None]
            assert not dead, "a server process exited:\n" + "\n".join(_log(out, p.name) for p in dead)
            assert time.time() - started < TIMEOUT, f"the job did not finish in {TIMEOUT} s\n" + _log(out, "chief0")
            time.sleep(0.2)
        assert chief.returncode == 0, _log(out, "chief0")
    finally:
        _kill(processes)
    with open(os.path.join(out, "result.json")) as f:
        result = json.load(f)
    result["seconds"] = time.time() - started
    result["out"] = out
    return result


@pytest.mark.parametrize("model, count", [("deepfm", 1), ("two_tower", 2)])
def test_every_embedding_table_is_sharded_over_both_parameter_servers(job, model, count):
    assert job["strategy"].startswith("ParameterServerStrategy")
    assert job["reused"]  # configure("parameter_server") again returns the connected strategy
    assert len(job[model]["tables"]) == count, job[model]["tables"]  # DeepFM: one fused table; Two-Tower: one per tower
    for name, table in job[model]["tables"].items():
        assert table["type"] == "ShardedVariable", name
        devices = sorted(shard["device"] for shard in table["shards"])
        assert devices == ["/job:ps/replica:0/task:0/device:CPU:0", "/job:ps/replica:0/task:1/device:CPU:0"], name
        assert sum(shard["rows"] for shard in table["shards"]) == table["shape"][0]
        assert min(shard["rows"] for shard in table["shards"]) > 0


@pytest.mark.parametrize("model, epochs", [("deepfm", 3), ("two_tower", 2)])
def test_the_loss_is_finite_and_goes_down(job, model, epochs):
    losses = job[model]["loss"]
    assert len(losses) == epochs and np.isfinite(losses).all(), losses
    assert losses[-1] < losses[0] - 0.05, losses


def test_the_export_reloads_without_the_cluster_and_serves_the_trained_model(job):
    # This process never connected to the cluster: the SavedModel must hold the trained values.
    with np.load(os.path.join(job["out"], "requests.npz")) as data:
        requests = {name: tf.constant(data[name]) for name in data.files}
    with np.load(os.path.join(job["out"], "expected.npz")) as data:
        expected = data["probability"]
    serving = tf.saved_model.load(job["export"]).signatures["serving_default"]
    got = serving(**requests)["probability"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32 and got.shape == (16,)
    assert expected.std() > 1e-3  # the trained model tells rows apart
    assert read_warmup(job["export"]), "the export has TF Serving warmup requests, as any other"


CLUSTER = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"], "ps": ["127.0.0.1:3"]}


@pytest.mark.parametrize(
    "config, message",
    [
        (None, "strategy='parameter_server' needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ({"cluster": {"chief": CLUSTER["chief"], "worker": CLUSTER["worker"]}}, "has no 'ps' list"),
        ({"cluster": {"worker": CLUSTER["worker"], "ps": CLUSTER["ps"]}}, "exactly one 'chief'"),
        ({"cluster": {"chief": CLUSTER["chief"], "ps": CLUSTER["ps"]}}, "has no 'worker' list"),
        ({"cluster": CLUSTER}, "no 'task' with 'type' and 'index'"),
        ({"cluster": CLUSTER, "task": {"type": "ps", "index": 1}}, "ps:1 is not in the cluster"),
        ({"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}, "is created in the chief"),
    ],
)
def test_a_bad_tf_config_is_an_input_error(monkeypatch, config, message):
    if config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", config if isinstance(config, str) else json.dumps(config))
    with pytest.raises(InputError, match=message):
        training.get_strategy("parameter_server")


def test_the_chief_does_not_serve_and_min_shard_bytes_is_for_parameter_servers(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": CLUSTER, "task": {"type": "chief", "index": 0}}))
    with pytest.raises(InputError, match="runs 'worker' and 'ps' tasks"):
        training.serve_cluster_task(join=False)
    with pytest.raises(InputError, match="min_shard_bytes=0"):
        training.get_strategy("parameter_server", min_shard_bytes=0)
    with pytest.raises(ValueError, match="min_shard_bytes applies to strategy='parameter_server' only"):
        training.get_strategy("mirrored", min_shard_bytes=1024)
