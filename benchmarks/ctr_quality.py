"""Quality of every CTR model on the ML-100K CTR view, one table, over seeds.

CTR view (``tfrecs.pipelines.ctr_view``; recipes: ``tfrecs.recipes.ctr``): label = rating >= 4,
``random-global`` split 80,000 / 10,000 / 10,000 drawn by the seed, features user_id, item_id,
gender, occupation, zip_code, age, release_year, genres (+ DIN's behaviour sequence). Each model is trained by
its recipe (``tfrecs train --model NAME``: Adam, early stopping on validation AUC with the
best weights restored) and scored on the 10,000 test rows: AUC, LogLoss, GAUC (per-user AUC
weighted by rows). MMoE and the shared-bottom baseline also report their rating task (RMSE,
MAE), side by side, and MMoE is run again with uncertainty weighting. A model without a
recipe yet is reported as missing.

Seeds (``--seeds``, default 2020 2021 2022): the seed draws the split, the initialisation and the
batches; every row is the mean ± sample standard deviation (ddof=1) over its seeds with the seed
list, and the .json keeps each seed's figures (``per_seed``), epochs and times.

Run: ``.venv/bin/python benchmarks/ctr_quality.py [--models din mmoe] [--epochs N] [--seeds 2020 2021 2022]``;
writes ``benchmarks/results/ctr_ml100k.{md,json}`` after every seed of every model (rows of models not
run now are kept from the previous file unless ``--fresh``) and prints the JSON last. On a busy machine
nothing is written (``--allow-busy`` writes the rows marked busy; rule in ``benchmarks/machine.py``).
Smoke test of the wiring (never into benchmarks/results)::

    python benchmarks/ctr_quality.py --models deepfm --max-users 300 --epochs 1 --seeds 2020 2021 \
        --allow-busy --out /tmp/ctr-smoke
"""

import argparse
import json
import os
import pathlib
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs.recipes import TrainConfig, get_recipe  # noqa: E402

import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate
import readme_tables as tables  # noqa: E402  - benchmarks/readme_tables.py: mean ± std over seeds, table cells

REPO = pathlib.Path(__file__).resolve().parents[1]
MODELS = ("wide_deep", "deepfm", "xdeepfm", "dcn", "dcn_v2", "din", "mmoe", "shared_bottom")
# Extra rows: (row name, recipe, hyper-parameter overrides).
VARIANTS = (("mmoe_uncertainty", "mmoe", {"uncertainty_weighting": True}),)
MULTITASK = ("mmoe", "shared_bottom", "mmoe_uncertainty")
SEED = 2020  # the seed of rows written before --seeds
SEEDS = (2020, 2021, 2022)
METRICS = ("auc", "logloss", "gauc", "rmse", "mae")


def run_one(row: str, recipe_name: str, hparams: dict, args, seed: int = SEED, data_dir=None) -> dict:
    """Figures of one recipe run on one seed, or ``{"status": "missing" | "error", ...}``."""
    try:
        recipe = get_recipe(recipe_name)
    except KeyError:
        return {"status": "missing", "note": f"no recipe registered for {recipe_name!r} yet"}
    config = TrainConfig(
        model=recipe_name,
        dataset="ml-100k",
        data_dir=data_dir,
        seed=seed,
        epochs=args.epochs,
        hparams=dict(hparams),
        verbose=0,
    )
    start = time.perf_counter()
    try:
        figures = dict(recipe(config).figures)
    except Exception as error:  # a broken recipe is reported, the table goes on
        traceback.print_exc()
        return {"status": "error", "note": f"{type(error).__name__}: {error}"[:300]}
    figures.update(
        status="ok", wall_seconds=round(time.perf_counter() - start, 1), hparams=hparams, epochs_cap=args.epochs
    )
    return figures


def seeded(entries: list, hparams: dict, epochs_cap) -> dict:
    """A row from its seeds' figures: ``seeds``, ``mean`` / ``std`` (sample, ddof=1; ``None`` for one
    seed), epochs per seed, mean seconds per epoch, total wall time; ``per_seed`` kept."""
    row = {"status": "ok", "seeds": [e["seed"] for e in entries], "per_seed": entries, "hparams": hparams}
    row["mean"], row["std"] = tables.summarise(entries, METRICS)
    row["epochs"] = [e.get("epochs") for e in entries]
    row["seconds_per_epoch"] = tables.seconds_per_epoch(row)
    row["total_seconds"] = round(sum(e.get("wall_seconds", 0.0) for e in entries), 1)
    row["epochs_cap"] = epochs_cap
    row["machine_quiet"] = all(e.get("machine_quiet", True) for e in entries)
    weights = [e["task_weights"] for e in entries if e.get("task_weights")]
    if weights:
        row["task_weights"] = {k: tables.mean_std([w[k] for w in weights])[0] for k in weights[0]}
    return row


def _status(figures: dict) -> str:
    return figures.get("status", "?") + (f" ({figures['note']})" if figures.get("note") else "")


def markdown(summary: dict) -> str:
    order = list(MODELS) + [row for row, _, _ in VARIANTS]
    rows = dict(
        sorted(summary["models"].items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    )
    file_seed = summary.get("seed")
    views = {name: tables.figures(row, file_seed=file_seed) for name, row in rows.items()}
    smoke = summary.get("smoke")
    lines = [
        "# CTR quality on ML-100K (CTR view)",
        "",
        *([f"> **Smoke run ({smoke}): wiring check, not a benchmark result.**", ""] if smoke else []),
        *machine.warning_lines(
            summary.get("machine", {}), [name for name, row in rows.items() if row.get("machine_quiet") is False]
        ),
        "Label = rating >= 4; split `random-global` 80,000 / 10,000 / 10,000 drawn by each seed; test rows. "
        "Each model trained by its recipe (Adam, early stopping on validation AUC with patience 2, best "
        "weights; at most 20 epochs, or the cap shown). "
        f"Every figure is the {tables.STD_NOTE} (one seed: the figure itself). "
        f"Run: `{summary['command']}`.",
        "",
        "| model | AUC | LogLoss | GAUC | epochs (cap) | sec/epoch | total time | seeds | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, figures in rows.items():
        view = views[name]
        spe = tables.seconds_per_epoch(figures)
        cap = f" ({figures['epochs_cap']})" if figures.get("epochs_cap") else ""
        epochs = tables.epochs_text(figures) if figures.get("status") == "ok" or "epochs" in figures else "-"
        lines.append(
            f"| {name} | {view.cell('auc')} | {view.cell('logloss')} | {view.cell('gauc')} | {epochs}{cap} | "
            f"{'-' if spe is None else f'{spe:.1f}'} | {tables.duration(tables.total_seconds(figures))} | "
            f"{tables.seeds_text(view.seeds) if view.seeds else '-'} | {_status(figures)} |"
        )
    lines += [
        "",
        "## Multi-task: like (rating >= 4) and rating",
        "",
        "| model | like AUC | like LogLoss | like GAUC | rating RMSE | rating MAE | task weights | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in MULTITASK:
        figures = rows.get(name, {})
        if figures.get("status") == "ok":
            view = views[name]
            weights = figures.get("task_weights")
            weights = ", ".join(f"{k} {v:.3f}" for k, v in weights.items()) if weights else "fixed 1, 1"
            if figures.get("task_weights") and len(view.seeds) > 1:
                weights += " (mean over seeds)"
            lines.append(
                f"| {name} | {view.cell('auc')} | {view.cell('logloss')} | {view.cell('gauc')} "
                f"| {view.cell('rmse')} | {view.cell('mae')} | {weights} | {tables.seeds_text(view.seeds)} |"
            )
    lines += [
        "",
        f"Machine: {machine.describe(summary.get('machine', {}))}. Seconds per epoch leave out the first (tracing) "
        "epoch and depend on the machine's load (2 cores shared with other jobs; each row's verdict "
        "(`machine_quiet`) and finishing time are in the .json).",
        "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS) + [row for row, _, _ in VARIANTS])
    parser.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: each recipe's own)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(SEEDS), help="seeds of every row (each draws its own split)"
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the existing .json")
    parser.add_argument(
        "--fresh", action="store_true", help="drop rows of earlier runs (default: keep the rows of models not run now)"
    )
    parser.add_argument(
        "--max-users",
        type=int,
        help="smoke run: only the first N users (a subset under --out); needs --out outside benchmarks/results",
    )
    return machine.add_argument(parser)


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds}: a seed twice")
    variants = {row: (recipe, hparams) for row, recipe, hparams in VARIANTS}
    command = "python benchmarks/ctr_quality.py" + (f" --epochs {args.epochs}" if args.epochs else "")
    summary = {
        "benchmark": "ctr_quality",
        "dataset": "ml-100k",
        "split": "test",
        "protocol": "ctr-random-global",
        "seeds": list(args.seeds),
        "std": "sample standard deviation over seeds (ddof=1); null for one seed",
        "command": command + " --seeds " + " ".join(map(str, args.seeds)),
        "models": {},
    }
    out = pathlib.Path(args.out)
    data_dir = None
    if args.max_users and not args.render:
        from sequential_quality import smoke_data_dir  # the subset writer the sequential benchmark uses

        if out.resolve() == (REPO / "benchmarks" / "results").resolve():
            parser.error("--max-users is a smoke run: give --out a directory outside benchmarks/results")
        data_dir = smoke_data_dir("ml-100k", None, args.max_users, str(out))
        summary["smoke"] = f"first {args.max_users} users"
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "ctr_ml100k.json"
    if args.render:
        summary = json.loads(previous.read_text())
        (out / "ctr_ml100k.md").write_text(markdown(summary))
        return summary
    if previous.exists() and not args.fresh:
        kept = json.loads(previous.read_text())
        summary["models"] = kept.get("models", {})
        for row in summary["models"].values():  # older single-seed rows keep the seed they were run with
            if "per_seed" not in row and row.get("status") == "ok":
                row.setdefault("seed", kept.get("seed", SEED))
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        for row in args.models:
            recipe, hparams = variants.get(row, (row, {}))
            entries = []
            for seed in args.seeds:
                print(f"== {row} seed {seed}", flush=True)
                figures = run_one(row, recipe, hparams, args, seed, data_dir)
                summary["machine"] = machine.record_or_exit(watch, args.allow_busy)
                if figures["status"] != "ok":  # missing recipe or an error: the row says so, the table goes on
                    summary["models"][row] = {**figures, "seeds_done": [e["seed"] for e in entries]}
                    break
                entries.append(
                    {
                        **figures,
                        "seed": seed,
                        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "machine_quiet": summary["machine"]["quiet"],
                    }
                )
                summary["models"][row] = seeded(entries, hparams, args.epochs)
                print(json.dumps({row: entries[-1]}), flush=True)
                (out / "ctr_ml100k.json").write_text(json.dumps(summary, indent=1) + "\n")
                (out / "ctr_ml100k.md").write_text(markdown(summary))
            (out / "ctr_ml100k.json").write_text(json.dumps(summary, indent=1) + "\n")
            (out / "ctr_ml100k.md").write_text(markdown(summary))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
