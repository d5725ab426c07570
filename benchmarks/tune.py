"""Hyper-parameter search of one recipe on validation NDCG@10 (Optuna TPE), every trial recorded.

Each trial trains ``tfrecs.recipes.train`` with the trial's ``--set`` values on the seed's split
and scores the restored best epoch on the validation part (``TrainConfig.evaluation =
{"split": "valid"}``): the test part is never looked at, so the chosen defaults can then be
measured on test by ``retrieval_quality.py`` / ``sequential_quality.py`` over 3 seeds without
selection bias. Trials are appended to ``benchmarks/results/tuning/<model>_<dataset>.json``
as they finish (a stopped search keeps what it measured; a rerun continues with the same
study, replaying the recorded trials into Optuna), with the space, the seed and the best
trial. The figures are validation quality, but the trials' wall times are recorded too, so the
load gate of ``benchmarks/machine.py`` applies: ``--allow-busy`` marks a busy run's trials
(``machine_quiet``). Spaces (``SPACES``) are the keys a practitioner would try first for each model; ``--space
key=a,b,c`` replaces or adds a categorical dimension.

Usage::

    python benchmarks/tune.py --model two_tower --trials 30
    python benchmarks/tune.py --model lightgcn --trials 20 --space objective=bpr,full_softmax
    python benchmarks/tune.py --model ease --trials 4 --out /tmp/tuning --allow-busy   # smoke run

Needs ``optuna`` (the ``bench`` extra).
"""

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import machine  # noqa: E402  - benchmarks/machine.py: load watch and results gate

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "tuning")
METRIC = "ndcg@10"

# model -> key -> ("float_log", low, high) | ("int", low, high) | ("categorical", [values])
SPACES: Dict[str, Dict[str, tuple]] = {
    "two_tower": {
        "temperature": ("float_log", 0.02, 0.3),
        "dropout": ("categorical", [0.0, 0.1, 0.2, 0.3, 0.5]),
        "embedding_dim": ("categorical", [32, 64, 128]),
        "history_length": ("categorical", [20, 50, 100, 300]),
        "learning_rate": ("float_log", 3e-4, 3e-3),
        "embedding_l2": ("categorical", [0.0, 1e-6, 1e-5]),
    },
    "lightgcn": {
        "objective": ("categorical", ["bpr", "full_softmax"]),
        "embedding_dim": ("categorical", [64, 128]),
        "num_layers": ("int", 1, 4),
        "l2": ("float_log", 1e-6, 1e-3),
        "temperature": ("float_log", 0.1, 2.0),
        "learning_rate": ("float_log", 1e-3, 1e-2),
    },
    "neumf": {
        "gmf_dim": ("categorical", [8, 16, 32, 64]),
        "mlp_embedding_dim": ("categorical", [8, 16, 32, 64]),
        "num_negatives": ("int", 2, 8),
        "learning_rate": ("float_log", 3e-4, 5e-3),
        "l2": ("categorical", [0.0, 1e-6, 1e-5]),
    },
    "ease": {"l2": ("float_log", 10.0, 3000.0)},
    "itemknn": {"neighbours": ("int", 10, 400)},
    "sasrec": {
        "dim": ("categorical", [50, 64, 128]),
        "dropout": ("categorical", [0.1, 0.2, 0.3, 0.5]),
        "num_blocks": ("int", 1, 3),
        "learning_rate": ("float_log", 3e-4, 3e-3),
    },
}


def parse_space(model: str, extra: List[str]) -> Dict[str, tuple]:
    """The model's built-in space with ``key=a,b,c`` categorical dimensions added or replaced.

    Raises:
        SystemExit: a model without a space and no ``--space``, or a malformed ``--space``.
    """
    space = dict(SPACES.get(model, {}))
    for item in extra:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise SystemExit(f"--space {item!r}: expected KEY=V1,V2,... (e.g. objective=bpr,full_softmax)")
        space[key] = ("categorical", [_value(v) for v in values.split(",")])
    if not space:
        raise SystemExit(f"no search space for {model!r}: give one or more --space KEY=V1,V2")
    return space


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def suggest(trial, space: Dict[str, tuple]) -> Dict[str, Any]:
    """One trial's values, drawn by Optuna from ``space``."""
    values = {}
    for key, (kind, *bounds) in space.items():
        if kind == "float_log":
            values[key] = trial.suggest_float(key, bounds[0], bounds[1], log=True)
        elif kind == "int":
            values[key] = trial.suggest_int(key, bounds[0], bounds[1])
        else:
            values[key] = trial.suggest_categorical(key, bounds[0])
    return values


def split_overrides(values: Dict[str, Any]) -> Dict[str, Any]:
    """``TrainConfig`` keywords: ``learning_rate`` / ``batch_size`` / ``epochs`` are its own fields."""
    own = {k: values[k] for k in ("learning_rate", "batch_size", "epochs") if k in values}
    return {**own, "hparams": {k: v for k, v in values.items() if k not in own}}


def run_trial(model: str, dataset: str, seed: int, values: Dict[str, Any], epochs: Optional[int]) -> Dict[str, Any]:
    """Trains one configuration and returns its validation figures (test never evaluated)."""
    from tfrecs.recipes import TrainConfig, train

    overrides = split_overrides(values)
    if epochs is not None:
        overrides["epochs"] = epochs
    started = time.perf_counter()
    result = train(
        TrainConfig(model=model, dataset=dataset, seed=seed, verbose=0, evaluation={"split": "valid"}, **overrides)
    )
    figures = result.figures
    return {
        "values": values,
        "valid": {k: float(v) for k, v in figures.items() if "@" in k and isinstance(v, (int, float))},
        "epochs": figures.get("epochs"),
        "best_epoch": figures.get("best_epoch"),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def load_record(path: str, model: str, dataset: str, seed: int, space: Dict[str, tuple]) -> Dict[str, Any]:
    """The study so far (a new one when ``path`` is absent); refuses a record of another setting."""
    fresh = {
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "metric": f"valid {METRIC}",
        "space": space,
        "trials": [],
    }
    if not os.path.exists(path):
        return fresh
    with open(path, encoding="utf-8") as handle:
        record = json.load(handle)
    for key in ("model", "dataset", "seed"):
        if record.get(key) != fresh[key]:
            raise SystemExit(f"{path} holds a study with {key}={record.get(key)!r}, not {fresh[key]!r}: use --out")
    record["space"] = {**record.get("space", {}), **{k: list(v) for k, v in space.items()}}
    return record


def write_record(path: str, record: Dict[str, Any]) -> None:
    """Writes ``record`` atomically, with the best trial so far."""
    done = [t for t in record["trials"] if METRIC in t.get("valid", {})]
    record["best"] = max(done, key=lambda t: t["valid"][METRIC]) if done else None
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, sort_keys=True, default=list)
        handle.write("\n")
    os.replace(partial, path)


def tune(args: argparse.Namespace) -> Dict[str, Any]:
    import optuna

    space = parse_space(args.model, args.space)
    path = os.path.join(args.out, f"{args.model}_{args.dataset}.json")
    record = load_record(path, args.model, args.dataset, args.seed, space)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    distributions = {k: _distribution(optuna, v) for k, v in space.items()}
    for old in record["trials"]:  # replay: the sampler continues from what was measured
        values = {k: v for k, v in old["values"].items() if k in distributions}
        if len(values) == len(distributions) and METRIC in old.get("valid", {}):
            try:
                study.add_trial(
                    optuna.trial.create_trial(params=values, distributions=distributions, value=old["valid"][METRIC])
                )
            except ValueError:
                pass  # a value outside today's space: kept in the record, not replayed
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        for _ in range(args.trials):
            trial = study.ask(distributions)
            values = dict(trial.params)
            outcome = run_trial(args.model, args.dataset, args.seed, values, args.epochs)
            study.tell(trial, outcome["valid"][METRIC])
            record["machine"] = machine.record_or_exit(watch, args.allow_busy)
            record["trials"].append({**outcome, "machine_quiet": record["machine"]["quiet"]})
            write_record(path, record)
            print(f"trial {len(record['trials'])}: valid {METRIC} {outcome['valid'][METRIC]:.4f} {values}", flush=True)
    write_record(path, record)
    print(json.dumps({"best": record["best"], "file": path}, sort_keys=True, default=list))
    return record


def _distribution(optuna, dimension: tuple):
    kind, *bounds = dimension
    if kind == "float_log":
        return optuna.distributions.FloatDistribution(bounds[0], bounds[1], log=True)
    if kind == "int":
        return optuna.distributions.IntDistribution(bounds[0], bounds[1])
    return optuna.distributions.CategoricalDistribution(list(bounds[0]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="two_tower", help="recipe to tune (default two_tower)")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--trials", type=int, default=20, help="trials to add to the study")
    parser.add_argument("--seed", type=int, default=2020, help="seed of the split, the models and the sampler")
    parser.add_argument("--epochs", type=int, help="maximum epochs per trial (default: the recipe's)")
    parser.add_argument("--space", action="append", default=[], metavar="KEY=V1,V2", help="a categorical dimension")
    parser.add_argument("--out", default=RESULTS, help="directory of <model>_<dataset>.json")
    return machine.add_argument(parser)


if __name__ == "__main__":
    tune(build_parser().parse_args())
