"""PinSage's sampler as the graph grows: memory and subgraphs/s, against full-batch LightGCN's graph memory.

For each edge count (``--edges``, default 1M, 10M, 50M) a synthetic bipartite graph (Zipf item
popularity, ``edges / 20`` users, ``edges / 100`` items) is built as PinSage holds it
(``BipartiteGraph``: CSR both ways), then ``--batches`` training subgraphs (``--batch-size``
items, ``--layers`` hops of ``--neighbors`` neighbours from ``--walks`` walks, plus each
user's neighbourhood) are drawn. Reported per size: the CSR bytes, seconds per subgraph batch
(it should stay flat: the cost of a batch does not depend on the graph's size), and the bytes
LightGCN's full-batch propagation needs for its graph tensors alone (``2E`` int64 index pairs
and float32 values, plus a float32 ``[nodes, 64]`` table per layer), against ``--budget-gb``.

Not measured here yet: PinSage's training examples/s at each size (the model's own step is the
same at every size, as its batch is a fixed-size subgraph) and the producer's wait share.

Run: ``nice -n 5 .venv/bin/python benchmarks/pinsage_scale.py`` on a quiet machine (50M edges:
about 2 GB of RAM for the edge arrays); ``--quick`` (100k and 1M edges) writes nothing. Writes
``benchmarks/results/pinsage_scale.{md,json}``; the last line is JSON.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate

from tfrecs.data.random_walks import BipartiteGraph, RandomWalkSampler, multi_hop  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def synthetic_graph(edges: int, seed: int = 0) -> BipartiteGraph:
    rng = np.random.default_rng(seed)
    num_users, num_items = max(2, edges // 20), max(2, edges // 100)
    popularity = 1.0 / np.arange(1, num_items + 1) ** 0.8
    items = rng.choice(num_items, size=edges, p=popularity / popularity.sum())
    return BipartiteGraph(rng.integers(0, num_users, edges), items, num_users, num_items)


def lightgcn_bytes(graph: BipartiteGraph, dim: int = 64, layers: int = 3) -> int:
    nodes = graph.num_users + graph.num_items
    return 2 * graph.num_edges * (2 * 8 + 4) + (layers + 1) * nodes * dim * 4


def measure(edges: int, args) -> dict:
    start = time.perf_counter()
    graph = synthetic_graph(edges)
    build = time.perf_counter() - start
    csr = sum(
        a.nbytes for a in (graph.edge_keys, graph.user_indptr, graph.user_items, graph.item_indptr, graph.item_users)
    )
    sampler = RandomWalkSampler(graph, args.walks, 2, args.neighbors, seed=0)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    for batch in range(args.batches):
        items = rng.integers(0, graph.num_items, args.batch_size)
        multi_hop(sampler, items, args.layers, seed=[0, batch])
        sampler.user_neighborhoods(rng.integers(0, graph.num_users, args.batch_size), seed=[1, batch], num_neighbors=50)
    per_batch = (time.perf_counter() - start) / args.batches
    full = lightgcn_bytes(graph)
    return {
        "edges": graph.num_edges,
        "build_seconds": round(build, 2),
        "csr_mb": round(csr / 2**20, 1),
        "seconds_per_subgraph_batch": round(per_batch, 4),
        "subgraph_examples_per_second": round(args.batch_size / per_batch, 1),
        "lightgcn_graph_mb": round(full / 2**20, 1),
        "lightgcn_fits_budget": full <= args.budget_gb * 2**30,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edges", type=int, nargs="+", default=[1_000_000, 10_000_000, 50_000_000])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--walks", type=int, default=16)
    parser.add_argument("--neighbors", type=int, default=10)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--budget-gb", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="100k and 1M edges, nothing written")
    return machine.add_argument(parser)


def main() -> None:
    args = build_parser().parse_args()
    sizes = [100_000, 1_000_000] if args.quick else args.edges
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        rows = [measure(edges, args) for edges in sizes]
        for row in rows:
            print(json.dumps(row), flush=True)
    if args.quick:
        print(json.dumps({"rows": rows, "written": False}))
        return
    record = machine.record_or_exit(watch, args.allow_busy)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "pinsage_scale.json"), "w") as handle:
        json.dump({"rows": rows, "settings": vars(args), "machine": record}, handle, indent=2)
    lines = ["# PinSage sampler scale", "", *machine.warning_lines(record)]
    lines += [
        "| edges | CSR MB | s / subgraph batch | examples/s | LightGCN graph MB | fits budget |",
        "|---:|---:|---:|---:|---:|:--|",
    ]
    lines += [
        f"| {r['edges']} | {r['csr_mb']} | {r['seconds_per_subgraph_batch']} | {r['subgraph_examples_per_second']} "
        f"| {r['lightgcn_graph_mb']} | {r['lightgcn_fits_budget']} |"
        for r in rows
    ]
    lines += ["", f"Machine: {machine.describe(record)}"]
    with open(os.path.join(RESULTS, "pinsage_scale.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(json.dumps({"rows": rows, "written": True}))


if __name__ == "__main__":
    main()
