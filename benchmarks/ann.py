"""ANN exports against their peers: tfrecs' ScaNN and brute-force SavedModels, raw ScaNN, FAISS HNSW and IVF.

One process, the same data, the same queries, batches of 100 (``--batch-size``); every index
and every search setting answers each batch in turn (the order rotates batch by batch), so
load from other processes hits them alike. Measured per setting: queries/s (all queries over
the summed batch times; also batch size over the median batch time, less moved by bursts of
other processes), recall@10 against the exact top-10 (the brute-force export's answers) and
the index build seconds.

Indexes and their sweeps (search-time parameters; one build per index):

* ``tfrecs-bf``: ``export_retrieval(index="brute_force")``, reloaded with ``tf.saved_model.load``
  and queried through ``serving_default``;
* ``tfrecs-scann``: ``export_retrieval(index="scann")`` with tfrecs' defaults (``tune_scann``,
  overridden with ``--scann key=value``), reloaded and queried through ``serving_default``;
  and the same build (``CandidateIndex.with_search``: leaves searched = ``--search-shares`` x
  leaves, re-scored candidates ``--reorder``) saved as one SavedModel with a signature per
  search setting (the signatures share one copy of the index), reloaded and queried through
  those signatures;
* ``raw-scann``: ``scann_ops_pybind`` with the export's build parameters, the same sweep
  (what the SavedModel costs over ScaNN itself);
* ``faiss-hnsw``: ``HNSW<m>,Flat`` inner product (``--hnsw-m``, ``--hnsw-ef-construction``),
  ``efSearch`` swept (``--ef-search``);
* ``faiss-ivf``: ``IVF<nlist>,Flat`` inner product (``--ivf-lists``: multiples of sqrt(n)),
  ``nprobe`` swept (``--nprobe``).

Data sets (``--datasets``): ``clustered``, 1M points of 1000 tight Gaussian clusters in dim 64
(the original generator; queries from the same mixture), and ``overlap``, a harder MIPS set:
100 heavily overlapping clusters in a space with a decaying spectrum (a random rotation of
per-dimension scales ``(1 + j)^-0.5``), candidate norms skewed by a log-normal factor
(sigma 0.4, as popularity skews real item embeddings), queries from the mixture without norm skew.

Reported per data set: each setting's row; for each index the best queries/s at recall@10 >=
``--target-recall`` (0.98); the ScaNN export's ratio to its own brute-force export and to the
best FAISS index at that recall, and its build time against FAISS HNSW's.

Run: ``nice -n 5 .venv/bin/python benchmarks/ann.py`` on a quiet machine (an estimated 20-30
minutes on 2 cores, much of it FAISS builds; peak memory an estimated 4-5 GB); writes
``benchmarks/results/ann.{md,json}`` and ``ann_<dataset>.png`` (recall@10 against
queries/s); the last line is JSON. On a busy machine nothing is written (``--allow-busy``
writes the results marked busy; rule in ``benchmarks/machine.py``). ``--quick`` (50k candidates, 1k queries, a short sweep) writes
nothing: a smoke test and a first look; ``--num-candidates`` etc. override its sizes.
"""

import argparse
import json
import math
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
from scann.scann_ops.py import scann_ops_pybind  # noqa: E402

from tfrecs.export import export_retrieval  # noqa: E402
from tfrecs.export.retrieval import RetrievalModule  # noqa: E402
from tfrecs.export.saving import save_export  # noqa: E402
from tfrecs.export.signature import feature_signature  # noqa: E402
from tfrecs.models.base import RetrievalModel  # noqa: E402

import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate

tf.get_logger().setLevel("ERROR")  # Keras' "non-serializable __init__ arguments" warning of the identity model
RESULTS = pathlib.Path(__file__).resolve().parent / "results"
DATASETS = ("clustered", "overlap")
FAMILIES = ("tfrecs-scann", "tfrecs-bf", "raw-scann", "faiss-hnsw", "faiss-ivf")
FULL = {"num_candidates": 1_000_000, "num_queries": 10_000}
QUICK = {"num_candidates": 50_000, "num_queries": 1_000}
QUICK_SWEEP = {"search_shares": [0.02, 0.05, 0.1], "reorder": [100, 250], "ef_search": [16, 64], "nprobe": [4, 16]}


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


def overlapping(num_points: int, mixture: dict, rng: np.random.Generator, norm_sigma: float) -> np.ndarray:
    """Points of a mixture of heavily overlapping clusters, rotated with a decaying spectrum,
    each scaled by ``exp(norm_sigma * N(0, 1))`` (skewed norms)."""
    centers, scales, rotation = mixture["centers"], mixture["scales"], mixture["rotation"]
    latent = centers[rng.integers(0, len(centers), num_points)]
    latent = latent + rng.standard_normal(latent.shape, dtype=np.float32)
    points = (latent * scales) @ rotation
    if norm_sigma:
        points *= np.exp(norm_sigma * rng.standard_normal((num_points, 1), dtype=np.float32))
    return points.astype(np.float32)


def make_data(name: str, num_candidates: int, num_queries: int, dim: int, clusters: int, seed: int):
    """(candidate vectors [n, dim], query vectors [q, dim]) of data set ``name``."""
    rng = np.random.default_rng(seed)
    if name == "clustered":
        centers = rng.standard_normal((clusters, dim), dtype=np.float32)
        return clustered(num_candidates, centers, rng, 0.5), clustered(num_queries, centers, rng, 0.5)
    if name == "overlap":
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        mixture = {
            "centers": 0.5 * rng.standard_normal((100, dim), dtype=np.float32),
            "scales": ((1.0 + np.arange(dim)) ** -0.5).astype(np.float32),
            "rotation": rotation.astype(np.float32),
        }
        return overlapping(num_candidates, mixture, rng, 0.4), overlapping(num_queries, mixture, rng, 0.0)
    raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")


class Setting:
    """One index at one search setting: ``search(queries [b, dim] float32) -> ids [b, k]``."""

    def __init__(self, family: str, name: str, params: dict, build_seconds: float, search, index: str):
        self.family, self.name, self.params = family, name, params
        self.build_seconds, self.search, self.index = build_seconds, search, index


def signature_search(path: str, name: str = "serving_default", loaded=None):
    signature = (loaded or tf.saved_model.load(path)).signatures[name]
    empty = tf.zeros([1, 0], tf.int64)

    def search(queries):
        return signature(query=tf.constant(queries), exclude_item_ids=empty)["item_ids"].numpy()

    return search


def tfrecs_settings(vectors, args, root: str, sweep: dict) -> list:
    """The brute-force export, the default ScaNN export and its search sweep (one build).

    The sweep is one more SavedModel of the same build with one signature per search setting
    (``serving_default``'s body with other leaves / re-scoring counts): the signatures share
    the saved index, so the sweep costs one copy of it in memory, not one per setting.
    """
    model = VectorRetrieval()
    signature = feature_signature(
        None, ["query"], overrides={"query": tf.TensorSpec([None, vectors.shape[1]], tf.float32)}
    )
    candidates = {"item_id": np.arange(len(vectors), dtype=np.int64), "embedding": vectors}
    common = dict(query_features=["query"], signature_overrides=signature, k=args.k, warmup=False)
    brute = export_retrieval(model, candidates, root, "bf", index="brute_force", **common)
    settings = [Setting("tfrecs-bf", "tfrecs-bf", {}, brute.info["index"]["build_seconds"], None, "bf")]
    settings[0].search = signature_search(brute.path)
    exported = export_retrieval(model, candidates, root, "scann", index="scann", scann_params=args.scann, **common)
    report = exported.info["index"]
    print(
        f"built tfrecs exports: brute force {brute.seconds} s, scann {exported.seconds} s ({report['params']})",
        flush=True,
    )
    build = report["build_seconds"]
    params = report["params"]
    default = {"num_leaves_to_search": params["num_leaves_to_search"], "reorder": params["num_reordering_candidates"]}
    settings.append(
        Setting("tfrecs-scann", "tfrecs-scann default", default, build, signature_search(exported.path), "scann")
    )
    index = exported.module.index
    variants = {}
    for leaves, reorder in search_grid(params["num_leaves"], sweep):
        if (leaves, reorder) != (default["num_leaves_to_search"], default["reorder"]):
            variant = index.with_search(num_leaves_to_search=leaves, num_reordering_candidates=reorder)
            variants[f"scann_l{leaves}_r{reorder}"] = RetrievalModule(model, variant, args.k, signature)
    if not variants:
        return settings, params
    sweep_module = tf.Module()
    sweep_module.variants = list(variants.values())
    sweep_module.serving_default = sweep_module.variants[0].serving_default
    sweep_module.extra_signatures = {name: module.serving_default for name, module in variants.items()}
    saved = save_export(sweep_module, root, "scann_sweep", "retrieval", {"k": args.k}, base_path_prefix=None)
    loaded = tf.saved_model.load(saved.path)
    for name in variants:
        leaves, reorder = (int(part[1:]) for part in name.split("_")[1:])
        point = {"num_leaves_to_search": leaves, "reorder": reorder}
        search = signature_search(saved.path, name, loaded)
        settings.append(Setting("tfrecs-scann", name, point, build, search, "scann"))
    return settings, params


def search_grid(num_leaves: int, sweep: dict) -> list:
    leaves = sorted({min(num_leaves, max(1, round(share * num_leaves))) for share in sweep["search_shares"]})
    return [(count, reorder) for count in leaves for reorder in sweep["reorder"]]


def raw_scann_settings(vectors, params: dict, args, sweep: dict) -> list:
    """ScaNN's pybind searcher with the export's build parameters, the same search sweep."""
    threshold = params.get("anisotropic_quantization_threshold")
    started = time.perf_counter()
    builder = scann_ops_pybind.builder(vectors, args.k, "dot_product").tree(
        num_leaves=params["num_leaves"],
        num_leaves_to_search=params["num_leaves_to_search"],
        training_iterations=params["training_iterations"],
    )
    builder = builder.score_ah(
        params["dimensions_per_block"],
        anisotropic_quantization_threshold=float("nan") if threshold is None else threshold,
    )
    if params["num_reordering_candidates"]:
        builder = builder.reorder(params["num_reordering_candidates"])
    searcher = builder.build()
    build = round(time.perf_counter() - started, 3)
    print(f"built raw ScaNN: {build} s", flush=True)
    settings = []
    for leaves, reorder in search_grid(params["num_leaves"], sweep):

        def search(queries, leaves=leaves, reorder=reorder):
            ids, _ = searcher.search_batched_parallel(
                queries, final_num_neighbors=args.k, pre_reorder_num_neighbors=reorder, leaves_to_search=leaves
            )
            return ids

        point = {"num_leaves_to_search": leaves, "reorder": reorder}
        settings.append(Setting("raw-scann", f"raw_l{leaves}_r{reorder}", point, build, search, "raw-scann"))
    return settings


def faiss_settings(vectors, args, sweep: dict) -> list:
    import faiss

    settings = []
    n, dim = vectors.shape
    started = time.perf_counter()
    hnsw = faiss.index_factory(dim, f"HNSW{args.hnsw_m},Flat", faiss.METRIC_INNER_PRODUCT)
    faiss.downcast_index(hnsw).hnsw.efConstruction = args.hnsw_ef_construction
    hnsw.add(vectors)
    build = round(time.perf_counter() - started, 3)
    label = f"HNSW{args.hnsw_m} efC{args.hnsw_ef_construction}"
    print(f"built FAISS {label}: {build} s", flush=True)
    for ef in sweep["ef_search"]:
        params = faiss.SearchParametersHNSW(efSearch=max(ef, args.k))

        def search(queries, params=params):
            return hnsw.search(queries, args.k, params=params)[1]

        point = {"index": label, "ef_search": ef}
        settings.append(Setting("faiss-hnsw", f"hnsw_ef{ef}", point, build, search, label))
    for multiple in args.ivf_lists:
        nlist = max(1, min(round(multiple * math.sqrt(n)), n // 39))
        started = time.perf_counter()
        ivf = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors)
        ivf.add(vectors)
        build = round(time.perf_counter() - started, 3)
        print(f"built FAISS IVF{nlist},Flat: {build} s", flush=True)
        for nprobe in sorted({min(nlist, p) for p in sweep["nprobe"]}):
            params = faiss.SearchParametersIVF(nprobe=nprobe)

            def search(queries, index=ivf, params=params):
                return index.search(queries, args.k, params=params)[1]

            point = {"index": f"IVF{nlist},Flat", "nprobe": nprobe}
            settings.append(Setting("faiss-ivf", f"ivf{nlist}_np{nprobe}", point, build, search, f"IVF{nlist}"))
    return settings


def run_interleaved(settings: list, queries: np.ndarray, batch_size: int) -> dict:
    """Every setting answers every batch; the order rotates batch by batch.

    Returns name -> (ids [n, k], seconds per batch [batches]).
    """
    found = {s.name: [] for s in settings}
    seconds = {s.name: [] for s in settings}
    for setting in settings:  # warm-up: traces, caches
        setting.search(queries[:batch_size])
    for number, offset in enumerate(range(0, len(queries), batch_size)):
        batch = np.ascontiguousarray(queries[offset : offset + batch_size])
        shift = number % len(settings)
        for setting in settings[shift:] + settings[:shift]:
            start = time.perf_counter()
            ids = np.asarray(setting.search(batch))
            seconds[setting.name].append(time.perf_counter() - start)
            found[setting.name].append(ids)
    return {name: (np.concatenate(found[name]), np.asarray(seconds[name])) for name in found}


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(found, exact)]))


def best_at(rows: list, family: str, target: float):
    """The row of ``family`` with the most queries/s at recall >= target (None if none reaches it)."""
    eligible = [row for row in rows if row["family"] == family and row["recall@10"] >= target]
    return max(eligible, key=lambda row: row["qps"], default=None)


def summarize(rows: list, target: float) -> dict:
    best = {family: best_at(rows, family, target) for family in FAMILIES}
    summary = {
        "best": {
            family: (None if row is None else {"name": row["index"], **_brief(row)}) for family, row in best.items()
        }
    }
    ours, brute = best["tfrecs-scann"], best["tfrecs-bf"]
    faiss_rows = [row for row in (best["faiss-hnsw"], best["faiss-ivf"]) if row is not None]
    best_faiss = max(faiss_rows, key=lambda row: row["qps"], default=None)
    summary["scann_vs_brute_force"] = None if ours is None or brute is None else round(ours["qps"] / brute["qps"], 2)
    summary["scann_vs_best_faiss"] = (
        None if ours is None or best_faiss is None else round(ours["qps"] / best_faiss["qps"], 2)
    )
    summary["best_faiss"] = None if best_faiss is None else best_faiss["index"]
    summary["scann_vs_raw_scann"] = (
        None if ours is None or best["raw-scann"] is None else round(ours["qps"] / best["raw-scann"]["qps"], 2)
    )
    hnsw_build = next((row["build_seconds"] for row in rows if row["family"] == "faiss-hnsw"), None)
    scann_build = next((row["build_seconds"] for row in rows if row["family"] == "tfrecs-scann"), None)
    summary["scann_build_vs_hnsw_build"] = (
        None if not hnsw_build or scann_build is None else round(scann_build / hnsw_build, 2)
    )
    return summary


def _brief(row: dict) -> dict:
    return {"qps": row["qps"], "recall@10": row["recall@10"], "build_seconds": row["build_seconds"]}


def measure_dataset(name: str, args, sweep: dict) -> dict:
    candidates, queries = make_data(name, args.num_candidates, args.num_queries, args.dim, args.clusters, args.seed)
    print(f"{name}: {len(candidates):,} candidates, {len(queries):,} queries, dim {args.dim}", flush=True)
    root = tempfile.mkdtemp(prefix="ann_bench_")
    try:
        settings, params = tfrecs_settings(candidates, args, root, sweep)
        settings += raw_scann_settings(candidates, params, args, sweep)
        settings += faiss_settings(candidates, args, sweep)
        answers = run_interleaved(settings, queries, args.batch_size)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    exact = answers["tfrecs-bf"][0]
    rows = []
    for setting in settings:
        found, seconds = answers[setting.name]
        row = {
            "family": setting.family,
            "index": setting.name,
            "params": setting.params,
            "build_seconds": setting.build_seconds,
            "qps": round(len(queries) / seconds.sum(), 1),
            # batch size / median batch time: less moved by another process' bursts than the total
            "qps_median_batch": round(args.batch_size / float(np.median(seconds)), 1),
            "recall@10": round(recall_at_k(found, exact), 4),
        }
        rows.append(row)
        print(json.dumps({"dataset": name, **row}), flush=True)
    return {
        "dataset": name,
        "num_candidates": len(candidates),
        "num_queries": len(queries),
        "scann_params": params,
        "rows": rows,
        "summary": summarize(rows, args.target_recall),
    }


def parse_scann(pairs) -> dict:
    result = {}
    for pair in pairs or []:
        key, _, value = pair.partition("=")
        result[key] = None if value.lower() == "none" else (float(value) if "." in value else int(value))
    return result or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="50k candidates, 1k queries, a short sweep; writes nothing"
    )
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--num-candidates", type=int, help="default 1,000,000 (--quick: 50,000)")
    parser.add_argument("--num-queries", type=int, help="default 10,000 (--quick: 1,000)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=1000, help="clusters of the clustered data set")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--target-recall", type=float, default=0.98)
    parser.add_argument(
        "--scann", nargs="*", metavar="KEY=VALUE", help="build overrides of tfrecs' ScaNN defaults (tune_scann)"
    )
    parser.add_argument("--search-shares", type=float, nargs="+", help="leaves searched, as shares of num_leaves")
    parser.add_argument("--reorder", type=int, nargs="+", help="candidates re-scored exactly")
    parser.add_argument("--ef-search", type=int, nargs="+", help="FAISS HNSW efSearch values")
    parser.add_argument("--nprobe", type=int, nargs="+", help="FAISS IVF nprobe values")
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--hnsw-ef-construction", type=int, default=40, help="FAISS's default 40")
    parser.add_argument("--ivf-lists", type=float, nargs="+", default=[1.0, 4.0], help="nlist as multiples of sqrt(n)")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--out", default=str(RESULTS))
    return machine.add_argument(parser)


FULL_SWEEP = {
    "search_shares": [0.01, 0.02, 0.03, 0.05, 0.1, 0.2],
    "reorder": [100, 250, 1000],
    "ef_search": [16, 32, 64, 128, 256, 512],
    "nprobe": [1, 2, 4, 8, 16, 32, 64, 128],
}


def resolve(args) -> dict:
    """Fills sizes from --quick / full defaults; returns the sweep."""
    sizes = QUICK if args.quick else FULL
    args.num_candidates = args.num_candidates or sizes["num_candidates"]
    args.num_queries = args.num_queries or sizes["num_queries"]
    args.scann = parse_scann(args.scann)
    sweep = dict(QUICK_SWEEP if args.quick else FULL_SWEEP)
    for key in sweep:
        if getattr(args, key) is not None:
            sweep[key] = getattr(args, key)
    return sweep


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    sweep = resolve(args)
    with machine.Watch() as watch:
        if not args.quick:
            machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        figures = measure(args, sweep)
    if args.quick:  # a smoke test: report the load, write nothing
        figures["machine"] = watch.record()
        print(json.dumps(figures))
        return figures
    figures["machine"] = machine.record_or_exit(watch, args.allow_busy)
    write_results(pathlib.Path(args.out), figures)
    print(json.dumps(figures))
    return figures


def measure(args, sweep: dict) -> dict:
    """The figures of one run (everything but the machine record)."""
    figures = {
        "benchmark": "ann",
        "split": "synthetic",
        "quick": bool(args.quick),
        "seed": args.seed,
        "dim": args.dim,
        "k": args.k,
        "batch_size": args.batch_size,
        "target_recall": args.target_recall,
        "sweep": sweep,
        "hnsw": {"m": args.hnsw_m, "ef_construction": args.hnsw_ef_construction},
        "ivf_lists_per_sqrt_n": args.ivf_lists,
        "datasets": [measure_dataset(name, args, sweep) for name in args.datasets],
    }
    return figures


def plot(dataset: dict, path: pathlib.Path, target: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5))
    groups = {}
    default = next((row for row in dataset["rows"] if row["index"] == "tfrecs-scann default"), None)
    for row in dataset["rows"]:
        if row is default:
            continue
        extra = row["params"].get("reorder") or row["params"].get("index")
        label = (
            row["family"]
            if extra is None
            else f"{row['family']} ({'reorder ' if 'reorder' in row['params'] else ''}{extra})"
        )
        groups.setdefault(label, []).append(row)
    for label, rows in groups.items():
        rows = sorted(rows, key=lambda row: row["recall@10"])
        marker = "*" if label.startswith("tfrecs-bf") else "o"
        axes.plot([r["recall@10"] for r in rows], [r["qps"] for r in rows], marker=marker, label=label)
    if default is not None:
        axes.plot([default["recall@10"]], [default["qps"]], "kD", markersize=8, label="tfrecs-scann default")
    axes.axvline(target, color="grey", linestyle=":", linewidth=1)
    axes.set_yscale("log")
    axes.set_xlabel("recall@10 (against the exact top-10)")
    axes.set_ylabel("queries/s (batches of 100)")
    axes.set_title(
        f"{dataset['dataset']}: {dataset['num_candidates']:,} candidates, {dataset['num_queries']:,} queries"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_results(directory: pathlib.Path, figures: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ann.json").write_text(json.dumps(figures, indent=1) + "\n")
    target = figures.get("target_recall", 0.98)
    lines = [
        "# ANN benchmark: tfrecs' ScaNN and brute-force exports, raw ScaNN, FAISS HNSW and IVF",
        "",
        *machine.warning_lines(figures["machine"]),
        f"k={figures['k']}, batches of {figures['batch_size']}, seed {figures['seed']}, dim {figures['dim']}; "
        "one process, every index and search setting answering each batch in turn. The exports are reloaded "
        "with `tf.saved_model.load` and queried through `serving_default`; recall@10 is against the "
        "brute-force export (exact). Build seconds: the index alone (one build per index; the sweep varies "
        f"search-time parameters). Best = most queries/s at recall@10 >= {target}.",
        "",
    ]
    for dataset in figures.get("datasets", []):
        summary = dataset["summary"]
        lines += [
            f"## {dataset['dataset']}: {dataset['num_candidates']:,} candidates, {dataset['num_queries']:,} queries",
            "",
            f"![recall@10 against queries/s](ann_{dataset['dataset']}.png)",
            "",
            f"tfrecs' ScaNN build parameters: `{dataset['scann_params']}`.",
            "",
            f"| index | best queries/s at recall@10 >= {target} | recall@10 | build s |",
            "| --- | --- | --- | --- |",
        ]
        for family, best in summary["best"].items():
            if best is None:
                lines.append(f"| {family} | not reached | - | - |")
            else:
                lines.append(
                    f"| {family} ({best['name']}) | {best['qps']} | {best['recall@10']} | {best['build_seconds']} |"
                )
        lines += [
            "",
            f"ScaNN export / its brute-force export: {summary['scann_vs_brute_force']}x; / best FAISS "
            f"({summary['best_faiss']}): {summary['scann_vs_best_faiss']}x; / raw ScaNN: "
            f"{summary['scann_vs_raw_scann']}x; build time / FAISS HNSW's: {summary['scann_build_vs_hnsw_build']}x.",
            "",
            "| index | params | build s | queries/s | queries/s (median batch) | recall@10 |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in dataset["rows"]:
            params = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "-"
            lines.append(
                f"| {row['index']} | {params} | {row['build_seconds']} | {row['qps']} | "
                f"{row.get('qps_median_batch', '-')} | {row['recall@10']} |"
            )
        lines.append("")
        plot(dataset, directory / f"ann_{dataset['dataset']}.png", target)
    lines += [f"Machine: {machine.describe(figures['machine'])}.", ""]
    (directory / "ann.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
