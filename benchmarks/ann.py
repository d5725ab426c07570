"""ScaNN inside a SavedModel against the brute-force export, measured in one run.

1M clustered synthetic candidates (dim 64) and 10k queries from the same mixture. Both
indexes are exported with ``tfrecs.export.export_retrieval`` (the benchmark's model is
the identity: query tower = the ``query`` vector, candidate tower = the ``embedding``
column), reloaded with ``tf.saved_model.load``, and queried through their
``serving_default`` signatures in batches, the exports taking turns batch by batch so
that load from other processes affects them alike. Exact top-10 comes from the brute-force export;
recall@10 of ScaNN is measured against it. The tuned default (``tune_scann``) is measured,
plus a sweep of ``num_leaves_to_search`` to show the recall / speed trade-off.

Run: ``nice -n 5 .venv/bin/python benchmarks/ann.py`` (about 5 minutes on 2 cores);
writes benchmarks/results/ann.{md,json}; the last line is JSON. On a busy machine nothing is
written (``--allow-busy`` writes the results marked busy; rule in ``benchmarks/machine.py``).
"""

import argparse
import json
import os
import pathlib
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfrecs  # noqa: E402,F401  - before TensorFlow
import scann  # noqa: E402,F401  - registers the ScaNN ops for reloading
import tensorflow as tf  # noqa: E402

from tfrecs.export import export_retrieval  # noqa: E402
from tfrecs.models.base import RetrievalModel  # noqa: E402

import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


class VectorRetrieval(RetrievalModel):
    """Identity towers: the query is the ``query`` feature, a candidate its ``embedding``."""

    def compute_query_embeddings(self, features, training=False):
        return features["query"]

    def compute_candidate_embeddings(self, features, training=False):
        return features["embedding"]


def clustered(num_points: int, centers: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
    assignment = rng.integers(0, len(centers), num_points)
    points = centers[assignment] + spread * rng.standard_normal((num_points, centers.shape[1]), dtype=np.float32)
    return points.astype(np.float32)


def run_interleaved(signatures: dict, queries: np.ndarray, batch_size: int, id_dtype) -> dict:
    """Answers every query with every export, batch by batch in turn, so load changes hit all alike.

    Returns name -> (ids [n, k], seconds spent in that export's calls), after one warm-up batch each.
    """
    empty = tf.zeros([1, 0], id_dtype)
    found = {name: [] for name in signatures}
    seconds = dict.fromkeys(signatures, 0.0)
    for signature in signatures.values():
        signature(query=tf.constant(queries[:batch_size]), exclude_item_ids=empty)
    for offset in range(0, len(queries), batch_size):
        batch = tf.constant(queries[offset : offset + batch_size])
        for name, signature in signatures.items():
            start = time.perf_counter()
            out = signature(query=batch, exclude_item_ids=empty)
            ids = out["item_ids"].numpy()
            seconds[name] += time.perf_counter() - start
            found[name].append(ids)
    return {name: (np.concatenate(found[name]), seconds[name]) for name in signatures}


def single_query_latency_ms(signatures: dict, queries: np.ndarray, id_dtype, count: int = 200) -> dict:
    """Median milliseconds of a one-query request per export (interleaved too)."""
    empty = tf.zeros([1, 0], id_dtype)
    times = {name: [] for name in signatures}
    for row in queries[:count]:
        for name, signature in signatures.items():
            start = time.perf_counter()
            signature(query=tf.constant(row[None]), exclude_item_ids=empty)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values) * 1000) for name, values in times.items()}


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-candidates", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--num-queries", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--sweep", type=int, nargs="*", default=[20], help="extra num_leaves_to_search values")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--out", default=str(RESULTS))
    return machine.add_argument(parser)


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        figures = measure(args)
    figures["machine"] = machine.record_or_exit(watch, args.allow_busy)
    write_results(pathlib.Path(args.out), figures)
    print(json.dumps(figures))


def measure(args) -> dict:
    """The figures of one run (everything but the machine record)."""
    rng = np.random.default_rng(args.seed)
    centers = rng.standard_normal((args.clusters, args.dim), dtype=np.float32)
    candidates = {
        "item_id": np.arange(args.num_candidates, dtype=np.int64),
        "embedding": clustered(args.num_candidates, centers, rng, spread=0.5),
    }
    queries = clustered(args.num_queries, centers, rng, spread=0.5)
    model = VectorRetrieval()
    signature = {"query": tf.TensorSpec([None, args.dim], tf.float32)}
    root = tempfile.mkdtemp(prefix="ann_bench_")
    figures = {
        "benchmark": "ann",
        "split": "synthetic",
        "seed": args.seed,
        "num_candidates": args.num_candidates,
        "dim": args.dim,
        "num_queries": args.num_queries,
        "k": args.k,
        "batch_size": args.batch_size,
    }
    runs = [("brute_force", None), ("scann", None)] + [("scann", {"num_leaves_to_search": s}) for s in args.sweep]
    exports, signatures = {}, {}
    try:
        for kind, overrides in runs:
            name = kind if overrides is None else f"scann_search{overrides['num_leaves_to_search']}"
            exports[name] = export_retrieval(
                model,
                candidates,
                root,
                name,
                query_features=["query"],
                signature_overrides=signature,
                index=kind,
                k=args.k,
                scann_params=overrides,
                warmup=False,
            )
            signatures[name] = tf.saved_model.load(exports[name].path).signatures["serving_default"]
            print(f"exported {name}: index build {exports[name].info['index']['build_seconds']} s", flush=True)
        answers = run_interleaved(signatures, queries, args.batch_size, tf.int64)
        latencies = single_query_latency_ms(signatures, queries, tf.int64)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    exact = answers["brute_force"][0]
    rows = []
    for name, export in exports.items():
        found, seconds = answers[name]
        row = {
            "index": name,
            "params": export.info["index"]["params"],
            "build_seconds": export.info["index"]["build_seconds"],
            "export_seconds": export.seconds,
            "export_mb": round(export.size_bytes / 2**20, 1),
            "qps": round(args.num_queries / seconds, 1),
            "latency_ms_batch1": round(latencies[name], 3),
            "recall@10": round(recall_at_k(found, exact), 4),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    brute, tuned = rows[0], rows[1]
    figures.update(
        {
            "scann_recall@10": tuned["recall@10"],
            "scann_qps": tuned["qps"],
            "brute_force_qps": brute["qps"],
            "qps_ratio": round(tuned["qps"] / brute["qps"], 2),
            "scann_build_seconds": tuned["build_seconds"],
            "scann_export_mb": tuned["export_mb"],
            "brute_force_export_mb": brute["export_mb"],
            "scann_params": tuned["params"],
            "runs": rows,
        }
    )
    return figures


def write_results(directory: pathlib.Path, figures: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ann.json").write_text(json.dumps(figures, indent=1) + "\n")
    lines = [
        "# ANN benchmark: ScaNN inside the SavedModel vs the brute-force export",
        "",
        *machine.warning_lines(figures["machine"]),
        f"{figures['num_candidates']:,} clustered synthetic candidates (dim {figures['dim']}), "
        f"{figures['num_queries']:,} queries, k={figures['k']}, batches of {figures['batch_size']}, "
        f"seed {figures['seed']}; the exports reloaded with `tf.saved_model.load` and queried through "
        "`serving_default` in the same run, taking turns batch by batch. Recall@10 is against the "
        "brute-force export (exact).",
        "",
        "| index | params | build s | export s | export MB | queries/s | batch-1 latency ms | recall@10 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in figures["runs"]:
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "-"
        lines.append(
            f"| {row['index']} | {params} | {row['build_seconds']} | {row['export_seconds']} | "
            f"{row['export_mb']} | {row['qps']} | {row['latency_ms_batch1']} | {row['recall@10']} |"
        )
    lines += [
        "",
        f"Tuned ScaNN: recall@10 {figures['scann_recall@10']}, {figures['qps_ratio']}x the queries/s of "
        f"brute force. Machine: {machine.describe(figures['machine'])}. Absolute speeds and build times "
        "follow the machine's load (other jobs share its cores); the exports take turns batch by batch, so the ratio is fair.",
        "",
    ]
    (directory / "ann.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
