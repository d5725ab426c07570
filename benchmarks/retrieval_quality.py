"""Retrieval quality on ML-100K: each model's recipe against the popularity floor.

Protocol ``random-full``: implicit feedback (every rating is an interaction), per-user random
80/10/10 split (RecBole's ``RS`` grouped by user, seed 2020), full ranking over all items
with the user's training and validation items masked, RecBole metric definitions
(Recall, NDCG, HR, MRR at 10 and 20). Each model trains with its recipe's tuned defaults
and early stopping on validation NDCG@10.

Rows are merged into ``benchmarks/results/retrieval_ml100k.json`` (and the markdown table
regenerated from it), so models benchmarked by separate runs share one table. A model
without a recipe yet is reported as missing and skipped.

Usage::

    python benchmarks/retrieval_quality.py                       # two_tower neumf lightgcn
    python benchmarks/retrieval_quality.py --models two_tower --set two_tower.temperature=0.1

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

DEFAULT_MODELS = ("two_tower", "neumf", "lightgcn")
PROTOCOL, DATASET, SEED = "random-full", "ml-100k", 2020
METRICS = ("recall@10", "ndcg@10", "hr@10", "mrr@10", "recall@20", "ndcg@20")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
NAME = "retrieval_ml100k"
REFERENCES = [  # published figures, other protocols: context only, not measured here
    "Microsoft Recommenders, ML-100K, random 75/25 split, top-10: NCF NDCG@10 0.396, LightGCN 0.420, "
    "BPR 0.442 (their precision/recall differ in definition and split; not comparable one to one).",
    "RecBole, ML-100K, random 80/10/10 by user, full ranking: BPR-MF about Recall@10 0.20, NDCG@10 0.24.",
]


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
    """A table row: the metrics, their ratio to the popularity floor, and ``extra``."""
    out = {name: round(float(figures[name]), 4) for name in METRICS}
    out["ndcg@10_vs_pop"] = round(float(figures["ndcg@10"]) / floor["ndcg@10"], 2)
    out.update(extra)
    return out


def architecture(model) -> Dict[str, object]:
    """The model's hyper-parameters from its Keras config (data and wiring left out)."""
    skipped = {"spec", "name", "trainable", "dtype", "query_features", "candidate_features"}
    return {key: value for key, value in model.get_config().items() if key not in skipped}


def run_model(
    name: str, hparams: Dict[str, object], epochs: Optional[int], floor: Dict[str, float]
) -> Dict[str, object]:
    """Trains ``name`` with its recipe and returns its row (``status`` says what happened)."""
    try:
        get_recipe(name)
    except KeyError:
        print(f"{name}: no recipe yet, skipped", flush=True)
        return {"status": "missing"}
    started = time.perf_counter()
    result = train(TrainConfig(model=name, dataset=DATASET, seed=SEED, epochs=epochs, hparams=dict(hparams), verbose=0))
    figures = result.figures
    used = {**architecture(result.model), **hparams}
    out = row(
        figures,
        floor,
        status="ok",
        epochs=figures.get("epochs"),
        best_epoch=figures.get("best_epoch"),
        seconds_per_epoch=round(float(figures.get("seconds_per_epoch", 0.0)), 2),
        wall_seconds=round(time.perf_counter() - started, 1),
        seed=SEED,
        hparams=used,
    )
    print(f"{name}: " + ", ".join(f"{k} {out[k]}" for k in METRICS), flush=True)
    return out


def markdown(table: Dict[str, object]) -> str:
    """The results table as markdown (popularity first, then models by name)."""
    rows = table["rows"]
    lines = [
        "# Retrieval quality on ML-100K (`random-full`)",
        "",
        *machine.warning_lines(
            table["machine"], [name for name, r in sorted(rows.items()) if r.get("machine_quiet") is False]
        ),
        f"Implicit feedback (all {table['interactions']} ratings are interactions), per-user random 80/10/10 split "
        f"(seed {table['seed']}; train / valid / test = {table['sizes']}), full ranking over all "
        f"{table['num_items']} items with training and validation items masked; RecBole metric definitions. "
        "Each model: its recipe's tuned defaults, early stopping on validation NDCG@10 (best epoch restored). "
        "`s/epoch` includes the per-epoch full-ranking validation.",
        "",
        "| model | " + " | ".join(METRICS) + " | NDCG@10 / pop | epochs (best) | s/epoch |",
        "|---|" + "---:|" * (len(METRICS) + 3),
    ]
    for name in ["pop"] + sorted(k for k in rows if k != "pop"):
        r = rows.get(name)
        if r is None:
            continue
        if r.get("status") == "missing":
            lines.append(f"| {name} | " + " | ".join("-" for _ in METRICS) + " | no recipe yet | | |")
            continue
        epochs = "-" if name == "pop" else f"{r.get('epochs')} ({r.get('best_epoch')})"
        seconds = "-" if name == "pop" else f"{r.get('seconds_per_epoch')}"
        lines.append(
            f"| {name} | "
            + " | ".join(f"{r[m]:.4f}" for m in METRICS)
            + f" | {r['ndcg@10_vs_pop']:.2f} | {epochs} | {seconds} |"
        )
    lines += ["", "Hyper-parameters used:", ""]
    for name in sorted(k for k in rows if k != "pop" and rows[k].get("hparams")):
        lines.append(f"- `{name}`: `{json.dumps(rows[name]['hparams'], sort_keys=True)}`")
    lines += ["", "Published reference points (other protocols; context only):", ""]
    lines += [f"- {text}" for text in REFERENCES]
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
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="recipes to run")
    parser.add_argument("--epochs", type=int, help="maximum epochs (default: each recipe's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.KEY=VALUE",
        help="hyper-parameter override of one model, e.g. two_tower.temperature=0.1",
    )
    parser.add_argument("--output-dir", default=RESULTS, help="where retrieval_ml100k.{md,json} are merged")
    return machine.add_argument(parser)


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = build_parser().parse_args(argv)
    overrides = parse_model_overrides(args.set, args.models)

    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        split = make_split(load_dataset(DATASET), "random", seed=SEED)
        floor_figures = evaluate_protocol(Popularity.from_dataset(split.train), split, PROTOCOL, ks=(10, 20))
        floor = {k: float(floor_figures[k]) for k in METRICS}
        measured: Dict[str, object] = {"pop": row(floor_figures, floor, status="ok", seed=SEED)}
        for name in args.models:
            measured[name] = run_model(name, overrides.get(name, {}), args.epochs, floor)
    record = machine.record_or_exit(watch, args.allow_busy)
    for figures in measured.values():
        if figures.get("status") == "ok":
            figures["machine_quiet"] = record["quiet"]

    os.makedirs(args.output_dir, exist_ok=True)
    json_path = os.path.join(args.output_dir, f"{NAME}.json")
    table = load_existing(json_path)
    rows = dict(table.get("rows", {}))
    rows.update({k: v for k, v in measured.items() if v.get("status") == "ok" or k not in rows})
    table.update(
        {
            "dataset": DATASET,
            "protocol": PROTOCOL,
            "split": "test",
            "seed": SEED,
            "metrics": list(METRICS),
            "interactions": len(split.train) + len(split.valid) + len(split.test),
            "sizes": split.sizes(),
            "num_items": split.train.num_items,
            "machine": record,
            "references": REFERENCES,
            "rows": rows,
        }
    )
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump(table, handle, indent=1, sort_keys=True)
    with open(os.path.join(args.output_dir, f"{NAME}.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(table))
    print(json.dumps({"protocol": PROTOCOL, "split": "test", "seed": SEED, "rows": measured}, sort_keys=True))
    return measured


if __name__ == "__main__":
    try:
        main()
    except (KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
