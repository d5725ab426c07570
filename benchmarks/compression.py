"""Embedding compression on ML-100K: memory of the embedding tables against quality, per option.

Two views, each trained as its recipe trains it (same split, settings, early stopping, best
weights restored), the embedding tables of the **large id features** (categorical / sequence
features with at least ``--large`` lookup rows: ``user_id``, ``item_id``, ``history`` for
Two-Tower; ``user_id``, ``item_id``, ``zip_code`` for DeepFM) stored per option:

* ``full``: float32 rows in the fused table (the recipes' own setting);
* ``float16``: a float16 table per feature;
* ``hash``: hash embeddings, ``V // 8`` pool rows, 2 hash functions;
* ``qr``: quotient-remainder, modulus ``ceil(sqrt(V))``;
* ``pq``: product quantisation trained end to end (Differentiable PQ, straight-through),
  ``--pq-subspaces`` x ``--pq-centroids``; evaluated as served: the frozen copy
  (``quantize_embeddings``) holding codes + codebooks only;
* ``pq_post``: the ``full`` model, then post-training PQ of those tables (k-means per
  sub-space, seeded; ``quantize_embeddings``), no retraining;
* ``min_count``: ``min_count = --min-count`` on those features (values seen fewer times in
  training share the OOV bucket).

Quality: Two-Tower NDCG@10 on ``random-full`` (test part; recipe ``two_tower``), DeepFM AUC
on the CTR view (``random-global`` test rows; recipe ``deepfm`` with ``embedding_dim`` 15, so
its tables are 16 wide with the first-order weight and PQ sub-spaces of 4 fit). Memory: bytes
of every ``FeatureEmbedding`` of the served model (``memory_bytes()``: all features, the small
ones included), next to the ``full`` figure. Each option is run with every seed (the seed
draws the split, the initialisation and the batches); tables give mean ± standard deviation.

Run (minutes per row and seed; the lead runs it on a quiet machine)::

    .venv/bin/python benchmarks/compression.py                 # 3 seeds, both views, every option
    .venv/bin/python benchmarks/compression.py --quick --out /tmp/compression --allow-busy   # smoke test

Writes ``benchmarks/results/compression.{md,json}`` (or into ``--out``); ``--quick`` (one
seed, one epoch, ``full``, ``pq``, ``pq_post`` and ``min_count`` unless ``--options``) never
writes over the results: into ``--out``, or else a new temporary directory it prints. On a busy machine nothing is written (``--allow-busy`` writes the rows marked busy;
rule in ``benchmarks/machine.py``).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import tempfile
import time
from typing import Dict, List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs.data import Feature, FeatureSpec, joined_columns, object_column  # noqa: E402
from tfrecs.data.feature_spec import SEQUENCE_PADDING  # noqa: E402
from tfrecs.evaluation import evaluate_protocol  # noqa: E402
from tfrecs.layers import FeatureEmbedding, quantize_embeddings  # noqa: E402
from tfrecs.models import DeepFM, TwoTower  # noqa: E402
from tfrecs.pipelines.ctr_view import CTR_SPLIT, load_ctr_data  # noqa: E402
from tfrecs.pipelines.two_tower_view import HISTORY, TwoTowerData  # noqa: E402
from tfrecs.recipes import TrainConfig  # noqa: E402
from tfrecs.recipes.ctr import CTR_RECIPES, ctr_figures  # noqa: E402
from tfrecs.recipes.retrieval_common import validation_evaluator  # noqa: E402
from tfrecs.recipes.skeleton import fit_recipe, load_split, recipe_settings  # noqa: E402
from tfrecs.recipes.two_tower import PROTOCOL, TwoTowerSettings, build_model  # noqa: E402
from tfrecs import training  # noqa: E402

import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate

REPO = pathlib.Path(__file__).resolve().parents[1]
NAME = "compression"
OPTIONS = ("full", "float16", "hash", "qr", "pq", "pq_post", "min_count")
QUICK_OPTIONS = ("full", "pq", "pq_post", "min_count")
VIEWS = ("two_tower", "deepfm")
SEEDS = (2020, 2021, 2022)
METRIC = {"two_tower": "ndcg@10", "deepfm": "auc"}
CTR_EMBEDDING_DIM = 15  # + 1 first-order column = 16-wide tables
UNFITTED = {"vocabulary": None, "mean": None, "std": None, "boundaries": None, "pruned_values": None}


# Spec per option ------------------------------------------------------------------------------


def large_features(spec: FeatureSpec, names: List[str], rows: int) -> List[str]:
    """The id features (categorical / sequence) among ``names`` with at least ``rows`` lookup rows."""
    return [n for n in names if spec[n].kind in ("categorical", "sequence") and spec[n].vocabulary_size >= rows]


def with_option(spec: FeatureSpec, names: List[str], option: str, args, columns: Dict[str, np.ndarray]) -> FeatureSpec:
    """``spec`` with ``names`` stored as ``option`` says (``min_count`` refits them on ``columns``)."""
    if option in ("full", "pq_post"):
        return spec
    if option == "min_count":
        declared = [Feature(**{**vars(spec[n]), **UNFITTED, "min_count": args.min_count}) for n in names]
        refitted = FeatureSpec(declared).fit({n: columns[n] for n in names})
        return FeatureSpec([refitted[f.name] if f.name in names else f for f in spec])
    changes = {"compression": option}
    if option == "pq":
        changes.update(pq_subspaces=args.pq_subspaces, pq_centroids=args.pq_centroids)
    return FeatureSpec([Feature(**{**vars(f), **changes}) if f.name in names else f for f in spec])


def served(model, option: str, names: List[str], args, seed: int):
    """The model as it would be served: PQ tables frozen (``pq``) or made now (``pq_post``)."""
    if option == "pq":
        return quantize_embeddings(model)
    if option == "pq_post":
        return quantize_embeddings(model, names, args.pq_subspaces, args.pq_centroids, seed=seed)
    return model


def embedding_bytes(model) -> Dict[str, object]:
    """Bytes of every ``FeatureEmbedding`` of ``model``, in total and per feature."""
    layers = [layer for layer in model.submodules if isinstance(layer, FeatureEmbedding)]
    per_feature: Dict[str, int] = {}
    for layer in layers:
        for name, entry in layer.memory_report().items():
            per_feature[name] = per_feature.get(name, 0) + entry["bytes"]
    return {"bytes": int(sum(per_feature.values())), "per_feature": per_feature}


# One run per (view, option, seed) -------------------------------------------------------------


def run_two_tower(option: str, seed: int, args) -> Dict[str, object]:
    config = TrainConfig(model="two_tower", seed=seed, epochs=args.epochs, verbose=0)
    model_kwargs, settings = recipe_settings(config, TwoTower, TwoTowerSettings())
    split = load_split(config, "random")
    data = TwoTowerData.from_split(split, settings.history_length)
    names = large_features(data.spec, data.query_features + data.candidate_features, args.large)
    columns = dict(joined_columns(split.train))
    if HISTORY in data.user_features:
        padding = SEQUENCE_PADDING[data.spec[HISTORY].dtype]
        columns[HISTORY] = object_column([row[row != padding].tolist() for row in data.user_features[HISTORY]])
    data = dataclasses.replace(data, spec=with_option(data.spec, names, option, args, columns))
    model = build_model(data, settings.learning_rate, **model_kwargs)
    fitted = fit_recipe(
        model,
        data.training_dataset(settings.batch_size, seed=seed),
        config,
        settings,
        evaluate_fn=validation_evaluator(split, PROTOCOL, data.score_fn),
    )
    model = served(model, option, names, args, seed)
    figures = evaluate_protocol(data.score_fn(model), split, PROTOCOL, ks=(10,))
    return {"quality": float(figures["ndcg@10"]), "features": names, **embedding_bytes(model), **fitted.figures(seed)}


def run_deepfm(option: str, seed: int, args) -> Dict[str, object]:
    recipe = CTR_RECIPES["deepfm"]
    config = TrainConfig(
        model="deepfm", seed=seed, epochs=args.epochs, verbose=0, hparams={"embedding_dim": CTR_EMBEDDING_DIM}
    )
    model_kwargs, settings = recipe_settings(config, recipe.model, recipe.settings, recipe.model_defaults)
    split = load_split(config, CTR_SPLIT)
    data = load_ctr_data(split)
    names = large_features(data.spec, list(data.features), args.large)
    data = dataclasses.replace(data, spec=with_option(data.spec, names, option, args, data.columns["train"]))
    model = DeepFM(data.spec, features=list(data.features), **model_kwargs)
    model.compile(optimizer=training.make_optimizer("adam", learning_rate=settings.learning_rate))
    fitted = fit_recipe(
        model,
        data.dataset("train", settings.batch_size, shuffle=True, seed=seed),
        config,
        settings,
        validation_data=data.dataset("valid", 4096),
        monitor="val_auc",
    )
    model = served(model, option, names, args, seed)
    figures = ctr_figures(model, data, "test")
    return {"quality": float(figures["auc"]), "features": names, **embedding_bytes(model), **fitted.figures(seed)}


RUNS = {"two_tower": run_two_tower, "deepfm": run_deepfm}


# Tables -----------------------------------------------------------------------------------------


def summarise(runs: List[Dict[str, object]]) -> Dict[str, object]:
    quality = np.array([r["quality"] for r in runs], np.float64)
    memory = np.array([r["bytes"] for r in runs], np.float64)
    return {
        "quality_mean": round(float(quality.mean()), 4),
        "quality_std": round(float(quality.std(ddof=1)) if len(quality) > 1 else 0.0, 4),
        "bytes_mean": int(round(memory.mean())),
        "seeds": [r["seed"] for r in runs],
        "runs": runs,
    }


def markdown(table: Dict[str, object]) -> str:
    cap = f", at most {table['epochs']}" if table["epochs"] else ""
    lines = [
        "# Embedding compression on ML-100K: memory against quality",
        "",
        *machine.warning_lines(table["machine"]),
        f"Large id features (>= {table['large']} lookup rows) stored per option; every other feature as in the "
        f"recipe. PQ: {table['pq_subspaces'] or 'dim / 4'} sub-spaces x {table['pq_centroids']} centroids (codes "
        f"uint8 up to 256 centroids); min_count = {table['min_count']}. Memory = bytes of every FeatureEmbedding of the "
        "served model (all features; `pq` and `pq_post` as frozen codes + codebooks). Quality: mean ± standard "
        f"deviation over seeds {table['seeds']} (split, initialisation and batches). Epochs: each recipe's, early "
        f"stopping with the best epoch restored{cap}. "
        f"Run: `{table['command']}`.",
        "",
    ]
    for view in table["views"]:
        rows = table["rows"].get(view, {})
        if not rows:
            continue
        full = rows.get("full", {}).get("bytes_mean")
        title = "Two-Tower, NDCG@10 (random-full, test)" if view == "two_tower" else "DeepFM, AUC (CTR view, test)"
        features = next(iter(rows.values()))["runs"][0]["features"]
        lines += [
            f"## {title}",
            "",
            f"Compressed features: {', '.join(features)}.",
            "",
            f"| option | {METRIC[view]} | embedding bytes | vs full | epochs |",
            "|---|---:|---:|---:|---:|",
        ]
        for option in OPTIONS:
            row = rows.get(option)
            if row is None:
                continue
            ratio = f"{row['bytes_mean'] / full:.3f}" if full else "-"
            epochs = ", ".join(str(r["epochs"]) for r in row["runs"])
            lines.append(
                f"| {option} | {row['quality_mean']:.4f} ± {row['quality_std']:.4f} | {row['bytes_mean']:,} | "
                f"{ratio} | {epochs} |"
            )
        lines.append("")
    lines += [f"Machine: {machine.describe(table['machine'])}", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--views", nargs="+", choices=VIEWS, default=list(VIEWS))
    parser.add_argument("--options", nargs="+", choices=OPTIONS, default=None, help="default: all (quick: a few)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help=f"default {list(SEEDS)} (quick: one)")
    parser.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: each recipe's; quick: 1)")
    parser.add_argument("--large", type=int, default=100, help="lookup rows from which an id feature is compressed")
    parser.add_argument("--pq-subspaces", type=int, default=None, help="PQ sub-spaces (default: dim / 4)")
    parser.add_argument("--pq-centroids", type=int, default=64, help="PQ centroids per sub-space")
    parser.add_argument("--min-count", type=int, default=5, help="min_count of the min_count option")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: one seed, one epoch, results in --out or a temp dir"
    )
    parser.add_argument("--out", default=None, help="results directory (default benchmarks/results)")
    return machine.add_argument(parser)


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.seeds = args.seeds or [SEEDS[0]]
        args.epochs = args.epochs or 1
        args.options = args.options or list(QUICK_OPTIONS)
        out = pathlib.Path(args.out or tempfile.mkdtemp(prefix="compression_quick_"))
    else:
        out = pathlib.Path(args.out or REPO / "benchmarks" / "results")
    args.seeds = args.seeds or list(SEEDS)
    args.options = args.options or list(OPTIONS)
    command = "python benchmarks/compression.py" + " ".join([""] + (argv if argv is not None else sys.argv[1:]))
    table: Dict[str, object] = {
        "benchmark": NAME,
        "dataset": "ml-100k",
        "views": list(args.views),
        "metrics": {view: METRIC[view] for view in args.views},
        "seeds": list(args.seeds),
        "epochs": args.epochs,
        "large": args.large,
        "pq_subspaces": args.pq_subspaces,
        "pq_centroids": args.pq_centroids,
        "min_count": args.min_count,
        "quick": bool(args.quick),
        "command": command.replace(" --allow-busy", ""),
        "rows": {},
    }
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        for view in args.views:
            for option in args.options:
                runs = []
                for seed in args.seeds:
                    started = time.perf_counter()
                    figures = RUNS[view](option, seed, args)
                    figures["wall_seconds"] = round(time.perf_counter() - started, 1)
                    runs.append(figures)
                    print(
                        f"{view} {option} seed {seed}: {METRIC[view]} {figures['quality']:.4f}, "
                        f"{figures['bytes']:,} bytes, {figures['epochs']} epochs, {figures['wall_seconds']} s",
                        flush=True,
                    )
                table["rows"].setdefault(view, {})[option] = summarise(runs)
    table["machine"] = machine.record_or_exit(watch, args.allow_busy)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    (out / f"{NAME}.md").write_text(markdown(table))
    print(f"wrote {out / NAME}.md and .json", flush=True)
    return table


if __name__ == "__main__":
    main()
