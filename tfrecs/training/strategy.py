"""Distribution strategies by name: ``auto``, ``one_device``, ``mirrored``, ``multi_worker``.

Example::

    import tfrecs
    from tfrecs import training

    strategy = training.get_strategy("mirrored")          # all local GPUs
    with strategy.scope():
        model = MyModel()
        model.compile(optimizer=training.make_optimizer("adam", learning_rate=1e-3))

``multi_worker`` is ``tf.distribute.MultiWorkerMirroredStrategy`` configured from the
``TF_CONFIG`` environment variable; like TensorFlow requires, create it at program start,
before any other TensorFlow op runs.
"""

import json
import os
from typing import Any, Dict, Optional, Sequence, Tuple

import tensorflow as tf

STRATEGIES: Tuple[str, ...] = ("auto", "one_device", "mirrored", "multi_worker")


def check_strategy_name(strategy: str) -> str:
    """Returns ``strategy`` if it is a known strategy name.

    Raises:
        ValueError: unknown name; the message lists ``STRATEGIES``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy={strategy!r} is not a known strategy; choose one of "
            f"{', '.join(repr(s) for s in STRATEGIES)} (or pass a tf.distribute.Strategy)."
        )
    return strategy


def read_tf_config(environ: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Parses and checks ``TF_CONFIG`` for multi-worker training.

    Returns:
        The parsed dict with ``cluster`` (holding ``worker``) and ``task`` (``type``,
        ``index``).

    Raises:
        ValueError: ``TF_CONFIG`` is unset, not JSON, or lacks a worker cluster / this task.

    Example::

        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]},
            "task": {"type": "worker", "index": 0}})
        config = read_tf_config()
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "")
    example = '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
    if not raw.strip():
        raise ValueError(
            "strategy='multi_worker' needs the TF_CONFIG environment variable describing the "
            f"cluster and this process's task, e.g. TF_CONFIG='{example}'."
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    workers = (cluster or {}).get("worker") or (cluster or {}).get("chief")
    if not isinstance(cluster, dict) or not workers:
        raise ValueError(f"TF_CONFIG has no 'cluster' with a 'worker' list; expected e.g. {example}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(f"TF_CONFIG has no 'task' with 'type' and 'index'; expected e.g. {example}")
    members = cluster.get(task["type"], [])
    if not 0 <= int(task["index"]) < len(members):
        raise ValueError(
            f"TF_CONFIG task {task['type']}:{task['index']} is not in the cluster "
            f"({task['type']} has {len(members)} member(s))."
        )
    return config


def _num_tf_config_workers() -> int:
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError:
        return 0
    cluster = config.get("cluster", {}) if isinstance(config, dict) else {}
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def get_strategy(strategy: Any = "auto", devices: Optional[Sequence[str]] = None) -> tf.distribute.Strategy:
    """Returns the distribution strategy named by ``strategy``.

    Args:
        strategy: ``"auto"`` (multi-worker if ``TF_CONFIG`` names several workers, else
            mirrored over GPUs if there are two or more, else one device),
            ``"one_device"`` (TensorFlow's default strategy: one GPU if present, else CPU),
            ``"mirrored"`` (``MirroredStrategy`` over ``devices``, default all GPUs, or the
            CPU), ``"multi_worker"`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``),
            or a ``tf.distribute.Strategy``, returned as is.
        devices: device names for ``"mirrored"``, e.g. ``["/gpu:0", "/gpu:1"]``.

    Returns:
        A ``tf.distribute.Strategy``; build and compile models under its ``scope()``.

    Raises:
        ValueError: unknown name, ``devices`` with a strategy other than ``mirrored``, or
            ``multi_worker`` without a usable ``TF_CONFIG``.

    Example::

        strategy = get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if not isinstance(strategy, str):
        raise ValueError(
            f"strategy={strategy!r} must be a name ({', '.join(repr(s) for s in STRATEGIES)}) "
            "or a tf.distribute.Strategy."
        )
    name = check_strategy_name(strategy)
    if devices is not None and name != "mirrored":
        raise ValueError(f"devices={list(devices)!r} applies to strategy='mirrored' only, not {name!r}.")
    if name == "auto":
        if _num_tf_config_workers() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "one_device"
    if name == "one_device":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is not None and not list(devices):
            raise ValueError("devices=[] names no device; pass None for all GPUs or a list of device names.")
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices is not None else None)
    read_tf_config()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def check_global_batch_size(global_batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """Checks that every replica gets at least one example of a global batch.

    Raises:
        ValueError: ``global_batch_size`` is smaller than ``strategy.num_replicas_in_sync``.

    Example::

        check_global_batch_size(256, strategy)
    """
    replicas = int(strategy.num_replicas_in_sync)
    if int(global_batch_size) < replicas:
        raise ValueError(
            f"global_batch_size={int(global_batch_size)} is smaller than the number of replicas "
            f"({replicas}): each replica needs at least one example per step. Use a global batch "
            f"of at least {replicas} (ideally a multiple of {replicas})."
        )
    return int(global_batch_size)


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """True in the process that should write shared outputs (always true on one machine)."""
    strategy = strategy or tf.distribute.get_strategy()
    extended = strategy.extended
    return bool(getattr(extended, "should_checkpoint", True))
