"""Retrieval quality on ML-100K and ML-1M: each model's recipe against the popularity floor and the EASE bar, over seeds.

Protocol ``random-full``: implicit feedback (every rating, or every line of the ML-1M sequence
file, is an interaction), per-user random 80/10/10 split (RecBole's ``RS`` grouped by user),
full ranking over all items with the user's training and validation items masked, RecBole
metric definitions (Recall, NDCG, HR, MRR at 10 and 20). Each model trains with its recipe's
tuned defaults and early stopping on validation NDCG@10 (EASE and ItemKNN: closed form, their
hyper-parameter searched on validation). Rows: two_tower, lightgcn, neumf, ease, itemknn, pop;
EASE is the bar, each row's NDCG@10 / EASE is in the tables.

Data sets (``--dataset``): ``ml-100k`` (results ``retrieval_ml100k``) and ``ml-1m`` (results
``retrieval_ml1m``; SASRec's ``ml-1m.txt`` split per user at random, read from ``--data-dir``,
default ``$TFRECS_DATA_DIR``, else ``../shared/data/ml-1m``; see ``sequential_quality.resolve_data_dir``).

Seeds (``--seeds``, default 2020 2021 2022): the seed draws the split as well as the
initialisation and sampling, so each seed is a fresh split; every row is the mean ± sample
standard deviation (ddof=1) over its seeds with the seed list, and the .json keeps each seed's
figures, epochs and times.

Rows are merged into ``benchmarks/results/<name>.json`` (and the markdown table regenerated
from it), so models benchmarked by separate runs share one table. A model without a recipe
yet is reported as missing and skipped.

Usage::

    python benchmarks/retrieval_quality.py --seeds 2020 2021 2022                  # every model, ML-100K
    python benchmarks/retrieval_quality.py --dataset ml-1m --seeds 2020 2021 2022
    python benchmarks/retrieval_quality.py --models two_tower --set two_tower.temperature=0.1
    # smoke test (first 300 users, 1 epoch; never into benchmarks/results):
    python benchmarks/retrieval_quality.py --max-users 300 --epochs 1 --seeds 2020 2021 --allow-busy --out /tmp/r

The last line printed is the JSON of the rows measured in this run. On a busy machine nothing is
written (``--allow-busy`` writes the rows marked busy; rule in ``benchmarks/machine.py``).
"""

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

import tfrecs  # noqa: F401  - before tensorflow
from tfrecs.data import load_dataset, make_split
from tfrecs.evaluation import evaluate_protocol
from tfrecs.models.popularity import Popularity
from tfrecs.recipes import TrainConfig, get_recipe, parse_overrides, train

import machine  # benchmarks/machine.py: load watch and results gate
import readme_tables as tables  # benchmarks/readme_tables.py: mean ± std over seeds, table cells
from sequential_quality import DataMissing, resolve_data_dir, smoke_data_dir  # the ML-1M file, smoke subsets

DEFAULT_MODELS = ("two_tower", "lightgcn", "neumf", "ease", "itemknn")
PROTOCOL, DATASET, SEED = "random-full", "ml-100k", 2020
SEEDS = (2020, 2021, 2022)
BAR = "ease"
METRICS = ("recall@10", "ndcg@10", "hr@10", "mrr@10", "recall@20", "ndcg@20")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
NAMES = {"ml-100k": "retrieval_ml100k", "ml-1m": "retrieval_ml1m"}
TITLES = {"ml-100k": "ML-100K", "ml-1m": "ML-1M (SASRec's ml-1m.txt, every line an interaction)"}
REFERENCES = {  # published figures, other protocols: context only, not measured here
    "ml-100k": [
        "Microsoft Recommenders, ML-100K, random 75/25 split, top-10: NCF NDCG@10 0.396, LightGCN 0.420, "
        "BPR 0.442 (their precision/recall differ in definition and split; not comparable one to one).",
        "RecBole, ML-100K, random 80/10/10 by user, full ranking: BPR-MF about Recall@10 0.20, NDCG@10 0.24.",
    ],
    "ml-1m": [
        "No published table uses this split of SASRec's ml-1m.txt; the sequential benchmark "
        "(sequential_quality.py --dataset ml-1m) is the one compared with papers.",
    ],
}


def parse_model_overrides(pairs: Sequence[str], models: Sequence[str]) -> Dict[str, Dict[str, object]]:
    """``["two_tower.temperature=0.1"]`` -> ``{"two_tower": {"temperature": 0.1}}``.

    Raises:
        ValueError: an entry without ``model.`` prefix or naming a model not benchmarked.
    """
    out: Dict[str, Dict[str, object]] = {}
    for pair in pairs:
        model, dot, rest = pair.partition(".")
        if not dot or model not in models:
            raise ValueError(f"--set expects MODEL.key=value with MODEL one of {list(models)}, got {pair!r}")
        out.setdefault(model, {}).update(parse_overrides([rest]))
    return out


def row(figures: Dict[str, object], floor: Dict[str, float], **extra) -> Dict[str, object]:
    """One seed's figures: the metrics, their ratio to that seed's popularity floor, and ``extra``."""
    out = {name: round(float(figures[name]), 4) for name in METRICS}
    out["ndcg@10_vs_pop"] = round(float(figures["ndcg@10"]) / floor["ndcg@10"], 2)
    out.update(extra)
    return out


def seeded_row(per_seed: List[Dict[str, object]]) -> Dict[str, object]:
    """A table row from its seeds: ``seeds``, ``mean`` / ``std`` (sample, ddof=1; ``None`` for one seed)
    of every metric, mean seconds per epoch, epochs per seed, total wall time, ``per_seed`` kept."""
    out: Dict[str, object] = {"status": "ok", "seeds": [entry["seed"] for entry in per_seed], "per_seed": per_seed}
    out["mean"], out["std"] = tables.summarise(per_seed, METRICS + ("ndcg@10_vs_pop",))
    out["epochs"] = [entry.get("epochs") for entry in per_seed]
    out["seconds_per_epoch"] = tables.seconds_per_epoch(out)
    walls = [entry.get("wall_seconds") for entry in per_seed]
    out["total_seconds"] = round(sum(walls), 1) if all(w is not None for w in walls) else None
    out["hparams"] = per_seed[-1].get("hparams")
    return out


def architecture(model) -> Dict[str, object]:
    """The model's hyper-parameters from its Keras config (data and wiring left out)."""
    skipped = {"spec", "name", "trainable", "dtype", "query_features", "candidate_features", "item_ids"}
    return {key: value for key, value in model.get_config().items() if key not in skipped}


def run_model(
    name: str,
    hparams: Dict[str, object],
    epochs: Optional[int],
    floor: Dict[str, float],
    seed: int = SEED,
    dataset: str = DATASET,
    data_dir: Optional[str] = None,
) -> Dict[str, object]:
    """Trains ``name`` with its recipe on one seed and returns that seed's figures (``status`` says what happened)."""
    try:
        get_recipe(name)
    except KeyError:
        print(f"{name}: no recipe yet, skipped", flush=True)
        return {"status": "missing"}
    started = time.perf_counter()
    config = TrainConfig(
        model=name, dataset=dataset, data_dir=data_dir, seed=seed, epochs=epochs, hparams=dict(hparams), verbose=0
    )
    result = train(config)
    figures = result.figures
    used = {**architecture(result.model), **hparams}
    for key in ("l2", "neighbours"):  # the closed-form recipes' searched value
        if key in figures:
            used[key] = figures[key]
    spe = figures.get("seconds_per_epoch")
    out = row(
        figures,
        floor,
        status="ok",
        epochs=figures.get("epochs"),
        best_epoch=figures.get("best_epoch"),
        seconds_per_epoch=round(float(spe), 2) if spe else None,
        wall_seconds=round(time.perf_counter() - started, 1),
        seed=seed,
        hparams=used,
        training_settings=result.record.get("training_settings"),
    )
    print(f"{name} seed {seed}: " + ", ".join(f"{k} {out[k]}" for k in METRICS), flush=True)
    return out


def markdown(table: Dict[str, object]) -> str:
    """The results table as markdown (popularity first, then models by name); mean ± std over seeds."""
    rows = table["rows"]
    file_seed = table.get("seed")
    views = {name: tables.figures(r, file_seed=file_seed) for name, r in rows.items() if r.get("status") != "missing"}
    bar = views.get(BAR)
    dataset = table.get("dataset", DATASET)
    seeds = table.get("seeds") or [file_seed]
    smoke = table.get("smoke")
    lines = [
        f"# Retrieval quality on {TITLES.get(dataset, dataset)} (`random-full`)",
        "",
        *([f"> **Smoke run ({smoke}): wiring check, not a benchmark result.**", ""] if smoke else []),
        *machine.warning_lines(
            table["machine"], [name for name, r in sorted(rows.items()) if r.get("machine_quiet") is False]
        ),
        f"Implicit feedback (all {table['interactions']} interactions), per-user random 80/10/10 split "
        f"(the seed draws it; seeds {', '.join(map(str, seeds))}; train / valid / test = {table['sizes']}), full "
        f"ranking over all {table['num_items']} items with training and validation items masked; RecBole metric "
        "definitions. Each model: its recipe's tuned defaults, early stopping on validation NDCG@10 (best epoch "
        "restored; EASE and ItemKNN: closed form, hyper-parameter searched on validation). "
        f"Every figure is the {tables.STD_NOTE} (one seed: the figure itself); ratios are ratios of means. "
        "`s/epoch` includes the per-epoch full-ranking validation.",
        "",
        "| model | " + " | ".join(METRICS) + " | NDCG@10 / pop | NDCG@10 / EASE | epochs (best) | s/epoch | total time "
        "| seeds |",
        "|---|" + "---:|" * (len(METRICS) + 5) + "---|",
    ]
    pop = views.get("pop")
    for name in ["pop"] + sorted(k for k in rows if k != "pop"):
        r = rows.get(name)
        if r is None:
            continue
        if r.get("status") == "missing":
            lines.append(f"| {name} | " + " | ".join("-" for _ in METRICS) + " | no recipe yet | | | | | |")
            continue
        view = views[name]
        ndcg = view.mean.get("ndcg@10")
        if name == "pop" or "per_seed" not in r:
            epochs = "-" if name == "pop" or r.get("epochs") is None else f"{r.get('epochs')} ({r.get('best_epoch')})"
        else:
            epochs = ", ".join(
                "-" if e.get("epochs") is None else f"{e['epochs']} ({e.get('best_epoch')})" for e in r["per_seed"]
            )
        spe = tables.seconds_per_epoch(r)
        lines.append(
            f"| {name} | "
            + " | ".join(view.cell(m) for m in METRICS)
            + f" | {tables.ratio_cell(tables.ratio(ndcg, pop.mean.get('ndcg@10') if pop else None))}"
            + f" | {tables.ratio_cell(tables.ratio(ndcg, bar.mean.get('ndcg@10') if bar else None))}"
            + f" | {epochs} | {'-' if spe is None else f'{spe:.2f}'} | {tables.duration(tables.total_seconds(r))}"
            + f" | {tables.seeds_text(view.seeds)} |"
        )
    if not bar:
        lines += ["", "No EASE row yet: NDCG@10 / EASE is filled in once EASE is measured."]
    lines += ["", "Hyper-parameters used:", ""]
    for name in sorted(k for k in rows if k != "pop" and rows[k].get("hparams")):
        lines.append(f"- `{name}`: `{json.dumps(rows[name]['hparams'], sort_keys=True)}`")
    lines += ["", "Published reference points (other protocols; context only):", ""]
    lines += [f"- {text}" for text in table.get("references", [])]
    lines += ["", f"Machine: {machine.describe(table['machine'])}", ""]
    return "\n".join(lines)


def load_existing(path: str) -> Dict[str, object]:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=sorted(NAMES), default=DATASET)
    parser.add_argument(
        "--data-dir",
        help="ml-1m: directory (or file) holding ml-1m.txt(.gz); default $TFRECS_DATA_DIR, else ../shared/data/ml-1m",
    )
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="recipes to run (pop always)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default: each recipe's)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(SEEDS), help="seeds of every row (each draws its own split)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.KEY=VALUE",
        help="hyper-parameter override of one model, e.g. two_tower.temperature=0.1",
    )
    parser.add_argument(
        "--output-dir", "--out", dest="output_dir", default=RESULTS, help="where NAME.{md,json} are merged"
    )
    parser.add_argument("--name", help="results file name (default: retrieval_ml100k / retrieval_ml1m)")
    parser.add_argument(
        "--max-users",
        type=int,
        help="smoke run: only the first N users (a subset file under --out); needs --out outside benchmarks/results",
    )
    return machine.add_argument(parser)


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds}: a seed twice")
    overrides = parse_model_overrides(args.set, args.models)
    name = args.name or NAMES[args.dataset]
    try:
        data_dir = resolve_data_dir(args.dataset, args.data_dir)
    except DataMissing as error:
        parser.error(str(error))
    if args.max_users:
        if os.path.realpath(args.output_dir) == os.path.realpath(RESULTS):
            parser.error("--max-users is a smoke run: give --out a directory outside benchmarks/results")
        data_dir = smoke_data_dir(args.dataset, data_dir, args.max_users, args.output_dir)

    results = Results(os.path.join(args.output_dir, f"{name}.json"), args, data_dir)
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        dataset = load_dataset(args.dataset, data_dir=data_dir)
        floors = {}
        for seed in args.seeds:  # popularity first: the floor of every seed's split
            split = make_split(dataset, "random", seed=seed)
            started = time.perf_counter()
            figures = evaluate_protocol(Popularity.from_dataset(split.train), split, PROTOCOL, ks=(10, 20))
            floors[seed] = {k: float(figures[k]) for k in METRICS}
            wall = round(time.perf_counter() - started, 1)
            results.add("pop", row(figures, floors[seed], status="ok", seed=seed, wall_seconds=wall), split)
        results.write(machine.record_or_exit(watch, args.allow_busy))
        for model in args.models:
            for seed in args.seeds:
                figures = run_model(
                    model, overrides.get(model, {}), args.epochs, floors[seed], seed, args.dataset, data_dir
                )
                if figures.get("status") == "missing":
                    results.missing(model)
                    break
                record = machine.record_or_exit(watch, args.allow_busy)
                results.add(model, {**figures, "machine_quiet": record["quiet"]})
                results.write(record)
    results.write(machine.record_or_exit(watch, args.allow_busy))
    summary = {k: v.get("mean", {}).get("ndcg@10") for k, v in results.measured.items() if v.get("status") == "ok"}
    print(json.dumps({"protocol": PROTOCOL, "split": "test", "seeds": args.seeds, "ndcg@10": summary}, sort_keys=True))
    return results.measured


class Results:
    """The results file of a run: rows measured now (by seed) merged into the rows already there."""

    def __init__(self, path: str, args, data_dir: Optional[str]):
        self.path, self.args, self.data_dir = path, args, data_dir
        self.per_seed: Dict[str, List[Dict[str, object]]] = {}
        self.measured: Dict[str, Dict[str, object]] = {}
        self.split = None

    def add(self, model: str, figures: Dict[str, object], split=None) -> None:
        self.per_seed.setdefault(model, []).append(figures)
        self.measured[model] = seeded_row(self.per_seed[model])
        self.measured[model]["machine_quiet"] = all(e.get("machine_quiet", True) for e in self.per_seed[model])
        self.split = self.split or split

    def missing(self, model: str) -> None:
        self.measured[model] = {"status": "missing"}

    def write(self, record: Dict[str, object]) -> None:
        """Merges the rows measured so far into the file (rows of models not run now are kept) and
        rewrites the markdown."""
        args, split = self.args, self.split
        os.makedirs(args.output_dir, exist_ok=True)
        table = load_existing(self.path)
        rows = dict(table.get("rows", {}))
        rows.update({k: v for k, v in self.measured.items() if v.get("status") == "ok" or k not in rows})
        if "seed" in table:  # older single-seed rows keep their seed; the file's seeds are per row now
            for kept in rows.values():
                if "per_seed" not in kept and kept.get("status") == "ok":
                    kept.setdefault("seed", table["seed"])
            del table["seed"]
        table.update(
            {
                "dataset": args.dataset,
                "data_source": self.data_dir or "tfrecs cache",
                "protocol": PROTOCOL,
                "split": "test",
                "seeds": list(args.seeds),
                "std": "sample standard deviation over seeds (ddof=1); null for one seed",
                "metrics": list(METRICS),
                "interactions": len(split.train) + len(split.valid) + len(split.test),
                "sizes": split.sizes(),
                "num_items": split.train.num_items,
                "machine": record,
                "references": REFERENCES[args.dataset],
                "rows": rows,
            }
        )
        if args.max_users:
            table["smoke"] = f"first {args.max_users} users"
        with open(self.path, "w", encoding="utf-8") as handle:
            json.dump(table, handle, indent=1, sort_keys=True)
        with open(os.path.splitext(self.path)[0] + ".md", "w", encoding="utf-8") as handle:
            handle.write(markdown(table))


if __name__ == "__main__":
    try:
        main()
    except (KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
