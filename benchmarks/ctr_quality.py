"""Quality of every CTR model on the ML-100K CTR view, one table, one run.

CTR view (``tfrecs.pipelines.ctr_view``; recipes: ``tfrecs.recipes.ctr``): label = rating >= 4,
``random-global`` split 80,000 / 10,000 / 10,000 with seed 2020, features user_id, item_id,
gender, occupation, zip_code, age, release_year, genres (+ DIN's behaviour sequence). Each model is trained by
its recipe (``tfrecs train --model NAME``: Adam, early stopping on validation AUC with the
best weights restored) and scored on the 10,000 test rows: AUC, LogLoss, GAUC (per-user AUC
weighted by rows). MMoE and the shared-bottom baseline also report their rating task (RMSE,
MAE), side by side, and MMoE is run again with uncertainty weighting. A model without a
recipe yet is reported as missing.

Run: ``.venv/bin/python benchmarks/ctr_quality.py [--models din mmoe] [--epochs N]``; writes
``benchmarks/results/ctr_ml100k.{md,json}`` after every model (rows of models not run now are
kept from the previous file unless ``--fresh``) and prints the JSON last. On a busy machine nothing
is written (``--allow-busy`` writes the rows marked busy; rule in ``benchmarks/machine.py``).
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

REPO = pathlib.Path(__file__).resolve().parents[1]
MODELS = ("wide_deep", "deepfm", "xdeepfm", "dcn", "dcn_v2", "din", "mmoe", "shared_bottom")
# Extra rows: (row name, recipe, hyper-parameter overrides).
VARIANTS = (("mmoe_uncertainty", "mmoe", {"uncertainty_weighting": True}),)
MULTITASK = ("mmoe", "shared_bottom", "mmoe_uncertainty")
SEED = 2020


def run_one(row: str, recipe_name: str, hparams: dict, args) -> dict:
    """Figures of one recipe run, or ``{"status": "missing" | "error", ...}``."""
    try:
        recipe = get_recipe(recipe_name)
    except KeyError:
        return {"status": "missing", "note": f"no recipe registered for {recipe_name!r} yet"}
    config = TrainConfig(
        model=recipe_name, dataset="ml-100k", seed=SEED, epochs=args.epochs, hparams=dict(hparams), verbose=0
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


def _cell(value, digits=4):
    return f"{value:.{digits}f}" if isinstance(value, float) else ("" if value is None else str(value))


def markdown(summary: dict) -> str:
    order = list(MODELS) + [row for row, _, _ in VARIANTS]
    rows = dict(
        sorted(summary["models"].items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    )
    lines = [
        "# CTR quality on ML-100K (CTR view)",
        "",
        *machine.warning_lines(
            summary.get("machine", {}), [name for name, row in rows.items() if row.get("machine_quiet") is False]
        ),
        "Label = rating >= 4; split `random-global` 80,000 / 10,000 / 10,000, seed 2020; test rows. "
        "Each model trained by its recipe (Adam, early stopping on validation AUC with patience 2, best "
        "weights; at most 20 epochs, or the cap shown). "
        f"Run: `{summary['command']}`.",
        "",
        "| model | AUC | LogLoss | GAUC | epochs (cap) | sec/epoch | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figures in rows.items():
        lines.append(
            f"| {name} | {_cell(figures.get('auc'))} | {_cell(figures.get('logloss'))} | "
            f"{_cell(figures.get('gauc'))} | {_cell(figures.get('epochs'))}"
            f"{' (' + str(figures['epochs_cap']) + ')' if figures.get('epochs_cap') else ''} | "
            f"{_cell(figures.get('seconds_per_epoch'), 1)} | {figures['status']}"
            f"{' (' + figures['note'] + ')' if figures.get('note') else ''} |"
        )
    lines += [
        "",
        "## Multi-task: like (rating >= 4) and rating",
        "",
        "| model | like AUC | like LogLoss | like GAUC | rating RMSE | rating MAE | task weights |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in MULTITASK:
        figures = rows.get(name, {})
        if figures.get("status") == "ok":
            weights = figures.get("task_weights")
            weights = ", ".join(f"{k} {v:.3f}" for k, v in weights.items()) if weights else "fixed 1, 1"
            lines.append(
                f"| {name} | {_cell(figures['auc'])} | {_cell(figures['logloss'])} | {_cell(figures['gauc'])} "
                f"| {_cell(figures['rmse'])} | {_cell(figures['mae'])} | {weights} |"
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
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the existing .json")
    parser.add_argument(
        "--fresh", action="store_true", help="drop rows of earlier runs (default: keep the rows of models not run now)"
    )
    return machine.add_argument(parser)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    variants = {row: (recipe, hparams) for row, recipe, hparams in VARIANTS}
    summary = {
        "benchmark": "ctr_quality",
        "dataset": "ml-100k",
        "split": "test",
        "protocol": "ctr-random-global",
        "seed": SEED,
        "command": "python benchmarks/ctr_quality.py" + (f" --epochs {args.epochs}" if args.epochs else ""),
        "models": {},
    }
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "ctr_ml100k.json"
    if args.render:
        summary = json.loads(previous.read_text())
        (out / "ctr_ml100k.md").write_text(markdown(summary))
        return summary
    if previous.exists() and not args.fresh:
        summary["models"] = json.loads(previous.read_text()).get("models", {})
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        for row in args.models:
            recipe, hparams = variants.get(row, (row, {}))
            print(f"== {row}", flush=True)
            figures = run_one(row, recipe, hparams, args)
            summary["machine"] = machine.record_or_exit(watch, args.allow_busy)
            summary["models"][row] = {
                **figures,
                "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine_quiet": summary["machine"]["quiet"],
            }
            print(json.dumps({row: summary["models"][row]}), flush=True)
            (out / "ctr_ml100k.json").write_text(json.dumps(summary, indent=1) + "\n")
            (out / "ctr_ml100k.md").write_text(markdown(summary))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
