"""Distribution strategies by name: ``auto``, ``one_device``, ``mirrored``, ``multi_worker``,
``parameter_server``.

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

``parameter_server`` is ``tf.distribute.ParameterServerStrategy`` from ``TF_CONFIG`` (a
``chief``, one or more ``worker`` and ``ps`` tasks): variables live on the parameter servers
and large ones (embedding tables) are split into a ``ShardedVariable`` over them by a
``MinSizePartitioner``, so no machine holds a whole table. The chief process calls
``get_strategy("parameter_server")`` and runs ``fit``; worker and ps processes run
``serve_cluster_task()``, which blocks.
"""

import json
import os
from typing import Any, Dict, Optional, Sequence, Tuple

import tensorflow as tf

from tfrecs.core.errors import InputError

STRATEGIES: Tuple[str, ...] = ("auto", "one_device", "mirrored", "multi_worker", "parameter_server")

#: ``MinSizePartitioner``'s default: a variable is split only into shards of at least this size.
MIN_SHARD_BYTES = 256 << 10


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
    example = '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
    config = _load_tf_config(environ, "multi_worker", "cluster and this process's task", example)
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise InputError(f"TF_CONFIG has no 'cluster' with a 'worker' list; expected e.g. {example}")
    return _check_task(config, example)


def _load_tf_config(environ: Optional[Dict[str, str]], strategy: str, describes: str, example: str) -> Dict[str, Any]:
    """``TF_CONFIG`` parsed (``InputError`` when unset or not JSON); ``strategy`` and ``describes``
    word the message for a missing variable."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not raw.strip():
        raise InputError(
            f"strategy={strategy!r} needs the TF_CONFIG environment variable describing the "
            f"{describes}, e.g. TF_CONFIG='{example}'."
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise InputError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}") from None
    return config if isinstance(config, dict) else {}


def _check_task(config: Dict[str, Any], example: str) -> Dict[str, Any]:
    """``config`` when its ``task`` names a member of its ``cluster``, else ``InputError``."""
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise InputError(f"TF_CONFIG has no 'task' with 'type' and 'index'; expected e.g. {example}")
    members = config["cluster"].get(task["type"], [])
    if not 0 <= int(task["index"]) < len(members):
        raise InputError(
            f"TF_CONFIG task {task['type']}:{task['index']} is not in the cluster "
            f"({task['type']} has {len(members)} member(s))."
        )
    return config


def _tf_config_cluster() -> Dict[str, Any]:
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "") or "{}")
    except json.JSONDecodeError:
        return {}
    cluster = config.get("cluster", {}) if isinstance(config, dict) else {}
    return cluster if isinstance(cluster, dict) else {}


def names_parameter_servers() -> bool:
    """True when ``TF_CONFIG`` lists ``ps`` tasks (``auto`` then means ``parameter_server``)."""
    return bool(_tf_config_cluster().get("ps"))


def _num_tf_config_workers() -> int:
    cluster = _tf_config_cluster()
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))


def read_parameter_server_config(environ: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Parses and checks ``TF_CONFIG`` for a parameter-server job.

    The cluster needs exactly one ``chief`` (the coordinator that runs ``fit``), at least one
    ``worker`` and at least one ``ps`` (parameter server); ``task`` names this process.

    Returns:
        The parsed dict.

    Raises:
        InputError: ``TF_CONFIG`` is unset, not JSON, lacks a chief, workers or parameter
            servers, or this task is not in the cluster.

    Example::

        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"],
                        "ps": ["host3:2222", "host4:2222"]},
            "task": {"type": "chief", "index": 0}})
        config = read_parameter_server_config()
    """
    example = (
        '{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222"], "ps": ["host2:2222", "host3:2222"]}, '
        '"task": {"type": "chief", "index": 0}}'
    )
    config = _load_tf_config(
        environ, "parameter_server", "cluster (a chief, workers and parameter servers) and this process's task", example
    )
    cluster = config.get("cluster")
    if not isinstance(cluster, dict):
        raise InputError(f"TF_CONFIG has no 'cluster'; expected e.g. {example}")
    if len(cluster.get("chief") or []) != 1:
        raise InputError(
            "strategy='parameter_server': TF_CONFIG's cluster needs exactly one 'chief' (the process that "
            f"runs fit), it has {len(cluster.get('chief') or [])}; expected e.g. {example}"
        )
    for kind, what in (("worker", "workers"), ("ps", "parameter servers")):
        if not cluster.get(kind):
            raise InputError(
                f"strategy='parameter_server': TF_CONFIG's cluster has no {kind!r} list ({what}); "
                f"expected e.g. {example}"
            )
    return _check_task(config, example)


def serve_cluster_task(environ: Optional[Dict[str, str]] = None, join: bool = True) -> tf.distribute.Server:
    """Runs this process's worker or ps server of a parameter-server job (from ``TF_CONFIG``).

    Worker and parameter-server processes do nothing else: the chief sends them the variables
    and the steps. With ``join=True`` it blocks for the process's lifetime.

    Raises:
        InputError: ``TF_CONFIG`` is not a parameter-server cluster, or names the chief (which
            calls ``get_strategy("parameter_server")`` and ``fit`` instead).

    Example::

        # worker / ps processes of the job:
        training.serve_cluster_task()
    """
    config = read_parameter_server_config(environ)
    task = config["task"]
    if task["type"] not in ("worker", "ps"):
        raise InputError(
            f"serve_cluster_task runs 'worker' and 'ps' tasks; this task is {task['type']!r}: "
            "call get_strategy('parameter_server') and fit there."
        )
    server = tf.distribute.Server(
        tf.train.ClusterSpec(config["cluster"]),
        job_name=task["type"],
        task_index=int(task["index"]),
        protocol=config.get("rpc_layer") or "grpc",
        start=True,
    )
    if join:
        server.join()
    return server


_PARAMETER_SERVER_STRATEGIES: Dict[Tuple[str, int], tf.distribute.Strategy] = {}


def parameter_server_strategy(min_shard_bytes: Optional[int] = None) -> tf.distribute.Strategy:
    """``tf.distribute.ParameterServerStrategy`` from ``TF_CONFIG`` with variables partitioned
    over every parameter server (``MinSizePartitioner``: shards of at least ``min_shard_bytes``,
    at most one per ps). Call it in the chief, at program start: it connects this process to
    the cluster, after which resources made before (lookup tables, a dataset's variables) are
    on a device the cluster does not know. A later call for the same ``TF_CONFIG`` returns the
    same strategy (``min_shard_bytes=None``: whichever was made first, else ``MIN_SHARD_BYTES``),
    so a script can create it first and a recipe's ``configure`` then reuses it.

    Raises:
        InputError: see ``read_parameter_server_config``; a ``min_shard_bytes`` below 1; this
            process is not the chief.
    """
    if min_shard_bytes is not None and (isinstance(min_shard_bytes, bool) or int(min_shard_bytes) < 1):
        raise InputError(f"min_shard_bytes={min_shard_bytes!r} must be a positive number of bytes.")
    config = read_parameter_server_config()
    if config["task"]["type"] != "chief":
        raise InputError(
            f"strategy='parameter_server' is created in the chief; this task is {config['task']['type']!r} "
            "(worker and ps processes run tfrecs.training.serve_cluster_task())."
        )
    cluster = json.dumps(config, sort_keys=True)
    if min_shard_bytes is None:
        made = [strategy for (known, _), strategy in _PARAMETER_SERVER_STRATEGIES.items() if known == cluster]
        if made:
            return made[0]
        min_shard_bytes = MIN_SHARD_BYTES
    key = (cluster, int(min_shard_bytes))
    if key not in _PARAMETER_SERVER_STRATEGIES:
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
            min_shard_bytes=int(min_shard_bytes), max_shards=len(config["cluster"]["ps"])
        )
        _PARAMETER_SERVER_STRATEGIES[key] = tf.distribute.ParameterServerStrategy(
            resolver, variable_partitioner=partitioner
        )
    return _PARAMETER_SERVER_STRATEGIES[key]


def is_parameter_server(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """True for a ``ParameterServerStrategy`` (``fit`` then goes through a ``ClusterCoordinator``)."""
    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.ParameterServerStrategy)


def get_strategy(
    strategy: Any = "auto",
    devices: Optional[Sequence[str]] = None,
    min_shard_bytes: Optional[int] = None,
) -> tf.distribute.Strategy:
    """Returns the distribution strategy named by ``strategy``.

    Args:
        strategy: ``"auto"`` (parameter servers if ``TF_CONFIG`` names ``ps`` tasks, else
            multi-worker if it names several workers, else mirrored over GPUs if there are
            two or more, else one device),
            ``"one_device"`` (TensorFlow's default strategy: one GPU if present, else CPU),
            ``"mirrored"`` (``MirroredStrategy`` over ``devices``, default all GPUs, or the
            CPU), ``"multi_worker"`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``),
            ``"parameter_server"`` (``ParameterServerStrategy`` from ``TF_CONFIG``, tables
            sharded over the ps tasks; see ``parameter_server_strategy``),
            or a ``tf.distribute.Strategy``, returned as is.
        devices: device names for ``"mirrored"``, e.g. ``["/gpu:0", "/gpu:1"]``.
        min_shard_bytes: for ``"parameter_server"``: the smallest shard a variable is split
            into (default: that of the strategy already made for this ``TF_CONFIG``, else
            ``MIN_SHARD_BYTES``, 256 KiB); a variable under twice this size stays whole.

    Returns:
        A ``tf.distribute.Strategy``; build and compile models under its ``scope()``.

    Raises:
        ValueError: unknown name, ``devices`` with a strategy other than ``mirrored``,
            ``min_shard_bytes`` with one other than ``parameter_server``, or ``multi_worker``
            / ``parameter_server`` (``InputError``) without a usable ``TF_CONFIG``.

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
    if min_shard_bytes is not None and name not in ("parameter_server", "auto"):
        raise ValueError(f"min_shard_bytes applies to strategy='parameter_server' only, not {name!r}.")
    if name == "auto":
        if names_parameter_servers():
            name = "parameter_server"
        elif _num_tf_config_workers() > 1:
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
    if name == "parameter_server":
        return parameter_server_strategy(min_shard_bytes)
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
