"""Sequential models on ML-100K leave-one-out: SASRec (each objective), BERT4Rec, popularity.

Protocols: ``loo-full`` (full ranking over all items, the user's train + valid items masked)
and ``loo-sampled`` (each test item among 100 uniform negatives, for comparison with papers).
Each model is trained once by its recipe (early stopping on validation NDCG@10) and the
same weights are scored on both protocols. Writes ``benchmarks/results/sequential_ml100k.{md,json}``
after every row, so a cut-short run still leaves its finished rows. On a busy machine nothing more is
written (``--allow-busy`` writes the rows marked busy; rule in ``benchmarks/machine.py``).

Each ``--runs`` entry is ``model:k=v,k=v`` (``--set`` overrides: model keywords and the
recipe's training settings); SASRec runs share one
epoch budget and BERT4Rec runs another, both with early stopping, so rows differ in how long
they *needed*, not in how long they were allowed. The best validation NDCG@10 of each row
is recorded, so variants of one objective can be chosen on validation, never on test.

Usage::

    python benchmarks/sequential_quality.py --sasrec-epochs 200 --bert4rec-epochs 400
    python benchmarks/sequential_quality.py --append --runs sasrec:objective=ce,dropout=0.5
"""

import argparse
import json
import os
import time

import tfrecs  # noqa: F401  - before tensorflow
from tfrecs.data import load_dataset, make_split
from tfrecs.evaluation import evaluate_protocol
from tfrecs.models import Popularity
from tfrecs.pipelines import SequenceData
from tfrecs.recipes import TrainConfig, train
from tfrecs.recipes.sequential_common import sequential_score_fn

import machine  # benchmarks/machine.py: load watch and results gate

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
OBJECTIVES = ("ce", "bce", "gbce", "sampled_softmax")
METRICS = ("hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20", "mrr@20")
SAMPLED = ("hr@10", "ndcg@10", "mrr@10")
ANCHORS = (
    "Public anchors (ML-1M, full ranking, not this data set): SASRec NDCG@10 0.1286 (RecBole leaderboard), "
    "gSASRec 0.1726 (Petrov & Macdonald, RecSys 2023)."
)


def write(rows, args, record):
    os.makedirs(RESULTS, exist_ok=True)
    payload = {
        "dataset": "ml-100k",
        "split": "test",
        "protocols": ["loo-full", "loo-sampled"],
        "seed": args.seed,
        "machine": record,
        "rows": rows,
        "anchors": ANCHORS,
    }
    with open(os.path.join(RESULTS, f"{args.name}.json"), "w") as handle:
        json.dump(payload, handle, indent=1)
    lines = [
        "# Sequential models on ML-100K (leave-one-out by time)",
        "",
        *machine.warning_lines(
            record, [f"{r['model']}/{r.get('objective', '-')}" for r in rows if r.get("machine_quiet") is False]
        ),
        "Test split; `loo-full` = full ranking over all 1,682 items with the user's train + valid items masked "
        "(RecBole-compatible HR/NDCG/MRR); `loo-sampled` = the test item among 100 uniform negatives. "
        f"Seed {args.seed}. Early stopping on validation NDCG@10. Machine: {machine.describe(record)}; "
        "the CPU cores are shared, so seconds/epoch include contention.",
        "",
        "| model | objective | "
        + " | ".join(f"full {m}" for m in METRICS)
        + " | "
        + " | ".join(f"sampled {m}" for m in SAMPLED)
        + " | best valid ndcg@10 | epochs | s/epoch | settings |",
        "|" + " --- |" * (len(METRICS) + len(SAMPLED) + 6),
    ]
    for row in rows:
        full, sampled = row["loo-full"], row["loo-sampled"]
        lines.append(
            f"| {row['model']} | {row.get('objective', '-')} | "
            + " | ".join(f"{full[m]:.4f}" for m in METRICS)
            + " | "
            + " | ".join(f"{sampled[m]:.4f}" for m in SAMPLED)
            + f" | {row.get('best_val_ndcg@10') or '-'} | {row.get('epochs', '-')} | "
            f"{row.get('seconds_per_epoch', 0):.1f} | {row.get('settings', '')} |"
        )
    lines += ["", ANCHORS, ""]
    with open(os.path.join(RESULTS, f"{args.name}.md"), "w") as handle:
        handle.write("\n".join(lines))


def pick(figures, names):
    return {name: float(figures[name]) for name in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--runs",
        nargs="+",
        default=[f"sasrec:objective={o}" for o in OBJECTIVES] + ["bert4rec:"],
        help="model:k=v,k=v entries (recipe hyper-parameters)",
    )
    parser.add_argument("--sasrec-epochs", type=int, default=200)
    parser.add_argument("--bert4rec-epochs", type=int, default=400)
    parser.add_argument("--append", action="store_true", help="keep the model rows already in the results file")
    parser.add_argument(
        "--name", default="sequential_ml100k", help="results file name (benchmarks/results/NAME.{md,json})"
    )
    return machine.add_argument(parser)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        rows = measure(parser, args, watch)
    print(
        json.dumps(
            {
                "split": "test",
                "rows": len(rows),
                **{f"{r['model']}/{r.get('objective', '-')}/ndcg@10": r["loo-full"]["ndcg@10"] for r in rows},
            }
        )
    )


def measure(parser, args, watch):
    """Scores popularity and every ``--runs`` entry; writes the results after each row."""
    from tfrecs.recipes.config import parse_overrides

    split = make_split(load_dataset("ml-100k"), "loo", seed=args.seed)
    data = SequenceData.from_split(split)
    pop = Popularity.from_dataset(split.train)
    rows = [
        {
            "model": "pop",
            "loo-full": pick(evaluate_protocol(pop, split, "loo-full"), METRICS),
            "loo-sampled": pick(evaluate_protocol(pop, split, "loo-sampled", ks=(10,)), SAMPLED),
        }
    ]
    if args.append and os.path.exists(os.path.join(RESULTS, f"{args.name}.json")):
        with open(os.path.join(RESULTS, f"{args.name}.json")) as handle:
            rows += [row for row in json.load(handle)["rows"] if row["model"] != "pop"]
    record = machine.record_or_exit(watch, args.allow_busy)
    rows[0]["machine_quiet"] = record["quiet"]
    write(rows, args, record)
    budgets = {"sasrec": args.sasrec_epochs, "bert4rec": args.bert4rec_epochs}
    runs = []
    for entry in args.runs:
        model, _, settings = entry.partition(":")
        if model not in budgets:
            parser.error(f"--runs {entry!r}: model must be one of {sorted(budgets)}")
        runs.append((model, parse_overrides([s for s in settings.split(",") if s]), budgets[model]))
    for model, hparams, epochs in runs:
        start = time.perf_counter()
        result = train(
            TrainConfig(model=model, dataset="ml-100k", epochs=epochs, seed=args.seed, hparams=hparams, verbose=0)
        )
        max_len = result.model.max_len
        score_fn = sequential_score_fn(result.model, data.histories("test", max_len))
        sampled = evaluate_protocol(score_fn, split, "loo-sampled", ks=(10,))
        figures = result.figures
        curve = [round(v, 4) for v in result.history.get("val_ndcg@10", [])]
        record = machine.record_or_exit(watch, args.allow_busy)
        rows.append(
            {
                "model": model,
                "objective": hparams.get("objective", "cloze"),
                "loo-full": pick(figures, METRICS),
                "loo-sampled": pick(sampled, SAMPLED),
                "epochs": figures["epochs"],
                "seconds_per_epoch": round(figures["seconds_per_epoch"], 2),
                "wall_seconds": round(time.perf_counter() - start, 1),
                "seed": args.seed,
                "best_val_ndcg@10": max(curve) if curve else None,
                "val_ndcg@10": curve,
                "settings": " ".join(f"{k}={v}" for k, v in hparams.items() if k != "objective") + f" epochs<={epochs}",
                "machine_quiet": record["quiet"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        write(rows, args, record)
    return rows


if __name__ == "__main__":
    main()
