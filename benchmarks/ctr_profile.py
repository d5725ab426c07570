"""Where a CTR train step spends its time: a TF profiler trace grouped by op kind.

Same data, models and optimizers as ``benchmarks/ctr_throughput.py`` (synthetic Criteo
schema, batch 4096, embedding 16, MLP 400-400-400, ``raw_ids=False``). For each run
(``model/precision/optimizer``) the script trains one untimed epoch (tracing), times
``--timed-epochs`` epochs without the profiler (wall ms per step), then records one epoch
with ``tf.profiler.experimental`` and groups the op events of the trace (XPlane, the file
TensorBoard's profile tab reads) into the groups of ``GROUPS``. Op times are summed over
TensorFlow's compute threads, so a group's ms/step is CPU time, which exceeds wall time when
two ops run at once. Nothing is written to ``benchmarks/results``: the trace directories stay
under ``--logdir`` for TensorBoard (``tensorboard --logdir DIR``, Profile tab), and ``--output
PATH`` writes ``PATH.json`` / ``PATH.md`` only when the machine was quiet (``benchmarks/machine.py``;
``--allow-busy`` writes them marked busy). Findings: ``docs/performance.md``.

Usage::

    python benchmarks/ctr_profile.py                                   # DeepFM + DCN-v2, f32 and bf16
    python benchmarks/ctr_profile.py --runs deepfm/mixed_bfloat16/lazy_adam --top 30
    ONEDNN_VERBOSE=1 python benchmarks/ctr_profile.py --runs deepfm/mixed_bfloat16/lazy_adam 2>&1 | grep brg
"""

import argparse
import collections
import glob
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tfrecs  # noqa: E402,F401  first: sets TF_USE_LEGACY_KERAS before TensorFlow
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

import ctr_throughput  # noqa: E402
import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate
from tfrecs.training.callbacks import EpochTimer  # noqa: E402

MATMUL_TYPES = re.compile(r"MatMul|Einsum|Conv")
SPARSE_OPTIMIZER_TYPES = {
    "Unique",
    "UniqueV2",
    "UnsortedSegmentSum",
    "ResourceGather",
    "GatherV2",
    "ResourceScatterUpdate",
    "ResourceScatterSub",
    "ResourceScatterAdd",
    "ResourceSparseApplyAdam",
    "TensorScatterUpdate",
    "SparseSegmentSum",
}
RESHAPE_TYPES = {
    "StridedSlice",
    "StridedSliceGrad",
    "Slice",
    "ConcatV2",
    "Pack",
    "Unpack",
    "Split",
    "SplitV",
    "Reshape",
    "Transpose",
    "Tile",
    "Pad",
    "GatherNd",
}

# Ordered: the first matching rule names an op's group.
GROUPS = (
    "matmul (MLP / cross, fwd + bwd)",
    "MLP / cross elementwise (bias, ReLU, grads)",
    "embedding gather (forward)",
    "slices / concats / stacks (fwd + bwd)",
    "FM / linear part",
    "gradient sums (AddN)",
    "optimizer: sparse rows (unique, segment sum, gather, scatter)",
    "optimizer: dense variables",
    "casts",
    "loss, label check, metrics",
    "input (iterator)",
    "other",
)


def group_of(name: str, op_type: str) -> str:
    """The ``GROUPS`` entry of one op event (``name`` is its graph node name)."""
    optimizer = bool(re.match(r"^(Adam|LazyAdam|[A-Za-z]*[Oo]ptimizer)/", name))
    if op_type in ("IteratorGetNext", "IteratorGetNextSync", "OptionalGetValue"):
        return "input (iterator)"
    if MATMUL_TYPES.search(op_type):
        return "matmul (MLP / cross, fwd + bwd)"
    if optimizer:
        if op_type in SPARSE_OPTIMIZER_TYPES:
            return "optimizer: sparse rows (unique, segment sum, gather, scatter)"
        return "optimizer: dense variables"
    if op_type == "Cast":
        return "casts"
    if re.search(r"ranking|label|loss|metric|binary_crossentropy|assert", name, re.IGNORECASE):
        return "loss, label check, metrics"
    if "feature_embedding" in name and op_type in ("ResourceGather", "GatherV2", "AddV2", "Add"):
        return "embedding gather (forward)"
    if "fm_interaction" in name or "numeric_linear" in name:
        return "FM / linear part"
    if op_type in RESHAPE_TYPES:
        return "slices / concats / stacks (fwd + bwd)"
    if op_type == "AddN":  # gradients of a tensor read twice (x0 in DCN, embeddings in DeepFM)
        return "gradient sums (AddN)"
    if re.search(r"mlp|cross|dense|head", name) and re.search(r"Relu|Bias|Add|Mul|Sub|Sum", op_type):
        return "MLP / cross elementwise (bias, ReLU, grads)"
    return "other"


def trace_groups(logdir: str, steps: int):
    """``({group: ms/step}, {op: ms/step}, traced wall ms/step)`` from the newest XPlane under ``logdir``."""
    path = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as handle:
        space.ParseFromString(handle.read())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    metadata = plane.event_metadata
    groups, ops = collections.Counter(), collections.Counter()
    wall = 0.0
    for line in plane.lines:
        for event in line.events:
            name = metadata[event.metadata_id].name
            ms = event.duration_ps / 1e9 / steps
            if line.name == "python" and name == "train_function":
                wall += ms
            if not line.name.startswith("tf_Compute") and not line.name.startswith("tf_data_iterator_get_next"):
                continue
            if ":" not in name or name.startswith(("ExecutorState", "Iterator::", "ThreadpoolListener")):
                continue
            node, _, op_type = name.rpartition(":")
            groups[group_of(node, op_type)] += ms
            ops[name] += ms
    return groups, ops, wall


def profile_run(run_name: str, args, spec, train) -> dict:
    name, precision, optimizer = run_name.split("/")
    tf_keras.mixed_precision.set_global_policy(precision)
    try:
        args.model_seed = 1
        tf_keras.utils.set_random_seed(1)
        model = ctr_throughput.build_tfrecs(args, spec, name, optimizer, args.jit)
        data = ctr_throughput.batched(train, spec, args.batch_size, "tfrecs").cache()
        timer = EpochTimer()
        model.fit(data, epochs=1 + args.timed_epochs, callbacks=[timer], verbose=0)
        step_ms = 1000 * sum(timer.seconds[1:]) / (args.timed_epochs * args.train_batches)
        logdir = os.path.join(args.logdir, run_name.replace("/", "_") + ("_jit" if args.jit else ""))
        tf.profiler.experimental.start(logdir)
        model.fit(data, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        groups, ops, traced = trace_groups(logdir, args.train_batches)
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
    tf_keras.backend.clear_session()
    return {
        "run": run_name + ("/jit" if args.jit else ""),
        "wall_ms_per_step": round(step_ms, 1),
        "examples_per_s": round(args.batch_size / step_ms * 1000, 1),
        "traced_wall_ms_per_step": round(traced, 1),
        "op_cpu_ms_per_step": round(sum(groups.values()), 1),
        "groups": {g: round(groups.get(g, 0.0), 2) for g in GROUPS},
        "top_ops": [[op, round(ms, 2)] for op, ms in ops.most_common(args.top)],
        "logdir": logdir,
    }


def table(results) -> str:
    head = "| op group (CPU ms/step, summed over threads) | " + " | ".join(r["run"] for r in results) + " |"
    lines = [head, "|---" * (len(results) + 1) + "|"]
    for group in GROUPS:
        lines.append(f"| {group} | " + " | ".join(f"{r['groups'][group]:.1f}" for r in results) + " |")
    for key, label in (
        ("op_cpu_ms_per_step", "all ops (CPU ms/step)"),
        ("traced_wall_ms_per_step", "wall ms/step under the profiler"),
        ("wall_ms_per_step", "wall ms/step, no profiler"),
        ("examples_per_s", "examples/s, no profiler"),
    ):
        lines.append(f"| **{label}** | " + " | ".join(f"{r[key]:.1f}" for r in results) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        default=[
            "deepfm/float32/lazy_adam",
            "deepfm/mixed_bfloat16/lazy_adam",
            "dcn_v2/float32/lazy_adam",
            "dcn_v2/mixed_bfloat16/lazy_adam",
        ],
    )
    parser.add_argument("--train-batches", type=int, default=8, help="steps per epoch (and traced steps)")
    parser.add_argument("--timed-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--vocabulary", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--hidden", type=int, nargs="+", default=[400, 400, 400])
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--jit", action="store_true", help="jit_compile the train step")
    parser.add_argument("--top", type=int, default=15, help="ops listed per run")
    parser.add_argument("--logdir", default="/tmp/tfrecs_ctr_profile")
    parser.add_argument(
        "--output", help="also write the JSON and the table to this path (.json / .md), on a quiet machine only"
    )
    return machine.add_argument(parser)


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.test_batches = 0
    with machine.Watch() as watch:
        if args.output:  # a busy machine: refuse before the minutes of work
            machine.record_or_exit(watch, args.allow_busy)
        start = time.perf_counter()
        train, _, spec = ctr_throughput.make_data(args)
        print(f"data: {len(train['label'])} rows in {time.perf_counter() - start:.1f}s", flush=True)
        results = []
        for run_name in args.runs:
            result = profile_run(run_name, args, spec, train)
            print(json.dumps(result), flush=True)
            results.append(result)
    record = machine.record_or_exit(watch, args.allow_busy) if args.output else watch.record()
    text = table(results)
    print(f"Machine: {machine.describe(record)}")
    print(text)
    if args.output:
        with open(args.output + ".json", "w") as handle:
            json.dump({"results": results, "machine": record}, handle, indent=1)
        with open(args.output + ".md", "w") as handle:
            handle.write("\n".join(machine.warning_lines(record)) + text + "\n")


if __name__ == "__main__":
    main()
