"""Throughput of the tf.data pipelines, in examples per second, measured in one run.

Stages:

1. ``tfrecord_read``: read + parse Criteo-schema TFRecords (13 float, 26 int64 features and
   a label; 8 shards; batch 4096; batch-then-parse, parallel interleave, AUTOTUNE), best of
   ``--epochs`` passes. The write rate of the same files is printed too.
2. ``popularity_sampling``: ``sample_negatives`` with a ``PopularitySampler`` (alpha 0.75,
   excluding each user's positives), K=4 pointwise, batch 4096: positives per second (and
   output rows per second). A uniform sampler is measured alongside.
3. ``windowing``: per-user sequences + causal windows (max_len 50) from interactions
   (interactions per second), then the training pipeline over the windows: batch 256, one
   negative per position (windows per second), and Cloze masking (windows per second).

The pipeline must not limit training: each stage should run at least 5x the training rate
of the fastest model that consumes it: by default tfrecs DeepFM (LazyAdam, float32, batch
4096), measured at about 29k examples/s on this machine by ``benchmarks/ctr_throughput.py``;
``--training-rate`` replaces it. Windowing is judged against ``--sequence-training-rate``
(windows/s of the fastest sequential model) when given.

Run: ``.venv/bin/python benchmarks/pipeline_throughput.py``; the last line is JSON (not printed when
the machine was busy, unless ``--allow-busy``).
"""

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfrecs  # noqa: E402,F401  - before TensorFlow
import tensorflow as tf  # noqa: E402

from tfrecs.data import criteo_feature_spec, iter_synthetic_ctr, make_split, synthetic_sequences  # noqa: E402
from tfrecs.pipelines import (
    PopularitySampler,
    PositiveIndex,
    SequenceIds,
    UniformSampler,  # noqa: E402
    add_causal_negatives,
    causal_windows,
    cloze_mask,
    cloze_windows,
    read_tfrecords,
    sample_negatives,
    user_sequences,
    write_tfrecords,
)

import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate

DEEPFM_EXAMPLES_PER_SECOND = 29_400  # benchmarks/results/ctr_throughput.md: tfrecs DeepFM, batch 4096


def timed_pass(dataset, count_key, rows=lambda b, key: int(b[key].shape[0])):
    """Iterates a dataset once; returns (examples, seconds)."""
    start = time.perf_counter()
    total = 0
    for batch in dataset:
        total += rows(batch, count_key)
    return total, time.perf_counter() - start


def best_rate(make_dataset, count_key, epochs):
    rates = []
    for _ in range(epochs):
        total, seconds = timed_pass(make_dataset(), count_key)
        rates.append(total / seconds)
    return max(rates), total


def bench_tfrecords(rows, epochs, compression, workdir):
    path = os.path.join(workdir, "criteo")
    start = time.perf_counter()
    schema = write_tfrecords(
        iter_synthetic_ctr(rows, vocabulary_sizes=100_000, seed=0),
        path,
        spec=criteo_feature_spec(),
        num_shards=8,
        compression=compression,
    )
    write_seconds = time.perf_counter() - start
    rate, total = best_rate(lambda: read_tfrecords(path, batch_size=4096), "label", epochs)
    assert total == rows, (total, rows)
    deterministic, _ = best_rate(lambda: read_tfrecords(path, batch_size=4096, deterministic=True), "label", 1)
    print(
        f"tfrecord_read: {rows} Criteo rows, {schema.num_bytes / 2**20:.0f} MiB in 8 shards "
        f"({compression or 'uncompressed'}): {rate:,.0f} examples/s (deterministic order {deterministic:,.0f}); "
        f"generate + write {rows / write_seconds:,.0f} rows/s"
    )
    return {
        "tfrecord_read_examples_per_second": round(rate),
        "tfrecord_read_deterministic_examples_per_second": round(deterministic),
        "tfrecord_generate_and_write_rows_per_second": round(rows / write_seconds),
        "tfrecord_rows": rows,
        "tfrecord_bytes": schema.num_bytes,
    }


def zipf_positives(num_users, num_items, per_user, seed=0):
    """Distinct (user, item) pairs, items Zipf(1.0)-popular (the generator of synthetic_implicit
    scores every item for every user, too slow at this size for a sampling benchmark)."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, num_items + 1))
    items = np.searchsorted(cdf / cdf[-1], rng.random(num_users * per_user))
    keys = np.unique(
        np.repeat(np.arange(num_users, dtype=np.int64), per_user) * num_items + rng.permutation(num_items)[items]
    )
    return keys // num_items, keys % num_items


def bench_sampling(num_users, num_items, per_user, epochs):
    users, items = zipf_positives(num_users, num_items, per_user)
    order = np.random.default_rng(1).permutation(len(users))
    users, items = users[order], items[order]
    start = time.perf_counter()
    index = PositiveIndex(users, items, num_users, num_items)
    counts = np.bincount(items, minlength=num_items)
    samplers = {
        "popularity": PopularitySampler(counts, alpha=0.75, exclude=index),
        "uniform": UniformSampler(num_items, exclude=index),
    }
    setup = time.perf_counter() - start
    figures = {
        "sampling_positives": len(users),
        "sampling_num_items": num_items,
        "sampling_setup_seconds": round(setup, 2),
    }
    positives = tf.data.Dataset.from_tensor_slices({"user_id": users, "item_id": items}).batch(4096).cache()
    list(positives)  # materialise the cache: measure sampling, not slicing
    for name, sampler in samplers.items():

        def make(sampler=sampler):
            return sample_negatives(positives, sampler, num_negatives=4, output="pointwise", seed=1).prefetch(2)

        rate, total = best_rate(make, "label", epochs)
        positives_rate = rate / 5
        print(
            f"{name}_sampling: {len(users)} positives x 4 negatives (excluding positives) over {num_items} items: "
            f"{positives_rate:,.0f} positives/s ({rate:,.0f} output rows/s)"
        )
        figures[f"{name}_sampling_examples_per_second"] = round(positives_rate)
        figures[f"{name}_sampling_rows_per_second"] = round(rate)
    return figures


def bench_windowing(num_users, num_items, epochs):
    ds = synthetic_sequences(num_users=num_users, num_items=num_items, seed=0)
    split = make_split(ds, "loo")
    start = time.perf_counter()
    windows = causal_windows(user_sequences(split.train), max_len=50)
    build_seconds = time.perf_counter() - start
    build_rate = len(split.train) / build_seconds
    ids = SequenceIds(ds.num_items)
    sampler = UniformSampler(ds.num_items, exclude=PositiveIndex.from_dataset(split.train))
    base = tf.data.Dataset.from_tensor_slices(windows).batch(256).cache()
    list(base)
    causal_rate, _ = best_rate(lambda: add_causal_negatives(base, sampler, 1, seed=0).prefetch(2), "inputs", epochs)
    cloze = tf.data.Dataset.from_tensor_slices(cloze_windows(user_sequences(split.train), 50)).batch(256).cache()
    list(cloze)
    cloze_rate, _ = best_rate(lambda: cloze_mask(cloze, ids, 0.2, seed=0).prefetch(2), "inputs", epochs)
    positions = float(windows["target_mask"].sum())
    per_window = positions / len(windows["user"])
    print(
        f"windowing: {len(split.train)} training interactions of {num_users} users -> {len(windows['user'])} "
        f"causal windows (max_len 50) in {build_seconds:.2f} s ({build_rate:,.0f} interactions/s); "
        f"causal batches with 1 negative/position {causal_rate:,.0f} windows/s "
        f"({causal_rate * per_window:,.0f} target positions/s); Cloze masking {cloze_rate:,.0f} windows/s"
    )
    return {
        "windowing_interactions": len(split.train),
        "windowing_build_interactions_per_second": round(build_rate),
        "windowing_causal_examples_per_second": round(causal_rate),
        "windowing_causal_positions_per_second": round(causal_rate * per_window),
        "windowing_cloze_examples_per_second": round(cloze_rate),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Criteo rows written and read")
    parser.add_argument("--epochs", type=int, default=3, help="passes per stage (best is kept)")
    parser.add_argument("--gzip", action="store_true", help="GZIP-compress the Criteo shards")
    parser.add_argument(
        "--training-rate",
        type=float,
        default=DEEPFM_EXAMPLES_PER_SECOND,
        help="examples/s of the fastest CTR / retrieval model consuming TFRecords and sampling",
    )
    parser.add_argument(
        "--sequence-training-rate",
        type=float,
        help="windows/s of the fastest sequential model (SASRec / BERT4Rec) consuming the windows",
    )
    return machine.add_argument(parser)


def main(argv=None):
    args = build_parser().parse_args(argv)
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the work
        figures = measure(args)
    figures["machine"] = machine.record_or_exit(watch, args.allow_busy)
    print(json.dumps(figures))


def measure(args) -> dict:
    """The figures of one run (everything but the machine record)."""
    figures = {
        "benchmark": "pipeline_throughput",
        "split": "synthetic",
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "batch_size": 4096,
    }
    workdir = tempfile.mkdtemp(prefix="tfrecs-bench-")
    try:
        figures.update(bench_tfrecords(args.rows, args.epochs, "GZIP" if args.gzip else None, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures.update(bench_sampling(num_users=100_000, num_items=50_000, per_user=20, epochs=args.epochs))
    figures.update(bench_windowing(num_users=30_000, num_items=20_000, epochs=args.epochs))
    judged = [
        ("tfrecord_read", figures["tfrecord_read_examples_per_second"], args.training_rate, "examples"),
        ("popularity_sampling", figures["popularity_sampling_examples_per_second"], args.training_rate, "examples"),
        ("windowing_causal", figures["windowing_causal_examples_per_second"], args.sequence_training_rate, "windows"),
    ]
    figures["training_rate_reference"] = args.training_rate
    figures["sequence_training_rate_reference"] = args.sequence_training_rate
    for stage, rate, reference, unit in judged:
        if not reference:
            print(f"{stage}: {rate:,.0f} {unit}/s; no training rate given (--sequence-training-rate), not judged")
            continue
        figures[f"{stage}_x_training_rate"] = round(rate / reference, 2)
        print(
            f"{stage}: {rate / reference:.1f}x the training rate {reference:,.0f} {unit}/s "
            f"({'meets' if rate >= 5 * reference else 'BELOW'} the 5x bar)"
        )
    return figures


if __name__ == "__main__":
    main()
