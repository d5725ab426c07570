"""The ``tfrecs`` command line.

    tfrecs data fetch ml-100k
    tfrecs data stats ml-100k [--split loo]
    tfrecs evaluate --model pop --dataset ml-100k --protocol loo-full
    tfrecs train --model two_tower --dataset ml-100k
    tfrecs export --model two_tower --dataset ml-100k --index scann --k 10
    tfrecs train --model deepfm --data ratings.csv --user-col user --item-col movie \\
        --rating-col stars --user-features age,country      # your own data (or --data-config FILE)
    tfrecs --version                                         # tfrecs, TensorFlow, tf-keras, TFRS, ScaNN

Commands that compute results end with one JSON line of their figures (lower-case metric
names such as ``ndcg@10``, and ``split`` naming the part measured), for scripts and CI;
``--brief`` prints one readable line per step instead (what ``make run`` shows).
Bad input exits with status 2 and a message naming the argument, file or feature.
TensorFlow's, absl's and ScaNN's log lines are hidden (``tfrecs.logs``); ``--log-level
info`` or ``-v`` shows them. ``--help`` stays fast: it imports no TensorFlow.
"""

import argparse
import json
import math
import os
import sys
import textwrap
from typing import Any, Dict, List, Optional

from tfrecs import logs
from tfrecs.core import stopping
from tfrecs.core.stopping import Stopped


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse with the tfrecs error style: one line ``tfrecs: error: <message>``, exit status 2."""

    def error(self, message: str):
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f" (see tfrecs {command} --help)" if command else " (see tfrecs --help)"
        self.exit(2, f"tfrecs: error: {' '.join(message.split())}{hint}\n")


# Static name lists, so `tfrecs --help` imports no TensorFlow; tests/test_cli_quiet.py keeps them
# equal to tfrecs.models.names() and tfrecs.evaluation.protocols.PROTOCOLS.
MODEL_NAMES = (
    "bert4rec",
    "dcn",
    "dcn_v2",
    "deepfm",
    "din",
    "ease",
    "itemknn",
    "lightgcn",
    "mmoe",
    "neumf",
    "pinsage",
    "pop",
    "sasrec",
    "shared_bottom",
    "two_tower",
    "wide_deep",
    "xdeepfm",
)
PROTOCOL_NAMES = ("loo-full", "loo-sampled", "random-full", "random-sampled")
# (argparse dest, from_files keyword) of the own-data column options
_DATA_OPTIONS = (
    ("user_col", "user"),
    ("item_col", "item"),
    ("timestamp_col", "timestamp"),
    ("rating_col", "rating"),
    ("label_col", "label"),
    ("user_features", "user_features"),
    ("item_features", "item_features"),
    ("list_features", "list_features"),
    ("format", "format"),
    ("sep", "sep"),
)


def column_names(text: str) -> tuple:
    """argparse type: comma-separated column names (``age,gender``)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return names


def versions() -> Dict[str, str]:
    """tfrecs and the installed versions of its stack, read from package metadata (no imports)."""
    from tfrecs.core.versions import package_versions

    return package_versions()


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        found = versions()
        lines = [f"tfrecs {found.pop('tfrecs')}"] + [f"  {name:<26} {version}" for name, version in found.items()]
        print("\n".join(lines))
        parser.exit(0)


def _catalogue_text() -> str:
    """The models, data sets and protocols that ``tfrecs --help`` lists (no TensorFlow import)."""
    from tfrecs.data.registry import DATASET_NAMES

    rows = [
        ("models", ", ".join(MODEL_NAMES) + " (tfrecs train --model M --list-params: its --set keys)"),
        ("data sets", ", ".join(DATASET_NAMES) + "; or your own file: --data FILE (see tfrecs train --help)"),
        ("protocols", ", ".join(PROTOCOL_NAMES) + " (tfrecs evaluate --protocol)"),
        ("noise", "TensorFlow / absl / ScaNN log lines are hidden; --log-level info (or -v) shows them"),
    ]
    return "\n".join(
        textwrap.fill(
            text, width=100, initial_indent=f"{label + ':':<11}", subsequent_indent=" " * 11, break_on_hyphens=False
        )
        for label, text in rows
    )


def _print_figures(title: str, figures: Dict[str, object]) -> None:
    print(title)
    for key, value in figures.items():
        if isinstance(value, (dict, list)):
            continue
        print(f"  {key:<32} {value:.4f}" if isinstance(value, float) else f"  {key:<32} {value}")
    print(json.dumps(figures, sort_keys=False))


def headline(figures: Dict[str, Any]) -> str:
    """The few figures ``--brief`` shows: AUC / LogLoss, or HR / NDCG / Recall / MRR at the smallest cut-off."""
    shown = [key for key in ("auc", "gauc", "logloss", "log_loss", "rmse") if isinstance(figures.get(key), float)]
    cutoffs = sorted({int(key.split("@")[1]) for key in figures if "@" in key and key.split("@")[1].isdigit()})
    if cutoffs:
        shown += [
            f"{metric}@{cutoffs[0]}"
            for metric in ("hr", "ndcg", "recall", "mrr")
            if f"{metric}@{cutoffs[0]}" in figures
        ]
    return ", ".join(f"{key} {figures[key]:.4f}" for key in shown)


def report(args, title: str, figures: Dict[str, Any], brief_line: str) -> None:
    """The end of a command: ``brief_line`` under ``--brief``, else the figure table and the JSON line."""
    if getattr(args, "brief", False):
        print(brief_line, flush=True)
    else:
        _print_figures(title, figures)


def step(args, text: str) -> None:
    """Under ``--brief``, says what starts now (``training two_tower (40 epochs max) ...``)."""
    if getattr(args, "brief", False):
        print(text, flush=True)


def keras_verbose(args) -> int:
    """``--verbose``, else 0 under ``--brief``, else progress bars in a terminal (1) and one line per epoch (2)."""
    if getattr(args, "verbose", None) is not None:
        return args.verbose
    if getattr(args, "brief", False):
        return 0
    return 1 if sys.stdout.isatty() else 2


def add_output_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``--log-level`` / ``-v`` / ``--brief``, accepted before or after the command name."""
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    group = parser.add_argument_group("output")
    group.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        default=default(None),
        help="TensorFlow / absl / ScaNN log lines to show (default error: only tfrecs' own lines; "
        "an existing TF_CPP_MIN_LOG_LEVEL is kept)",
    )
    group.add_argument(
        "-v", dest="log_level", action="store_const", const="info", default=default(None), help="--log-level info"
    )
    group.add_argument(
        "--brief",
        action="store_true",
        default=default(False),
        help="one readable line per step instead of the figure table and the JSON line",
    )


def add_data_source_args(parser: argparse.ArgumentParser, own_data: bool = True) -> None:
    """``--data-dir`` / ``--cache-dir`` of named data sets and, with ``own_data``, ``--data`` and its columns."""
    parser.add_argument("--data-dir", help="directory with the data set's files (GroupLens or RecBole layout)")
    parser.add_argument("--cache-dir", help="tfrecs cache root (default $TFRECS_CACHE_DIR or ~/.cache/tfrecs)")
    if not own_data:
        return
    group = parser.add_argument_group(
        "your own data",
        "Read interactions from a file instead of a named data set (tfrecs.data.from_files); "
        "--dataset then only names it in the figures (default: the file's name).",
    )
    source = group.add_mutually_exclusive_group()
    source.add_argument(
        "--data", metavar="PATH", help="CSV, TSV, Parquet, or a sequence file (--format sequences / pairs)"
    )
    source.add_argument(
        "--data-config",
        metavar="FILE",
        help="JSON (or YAML) mapping of from_files arguments, e.g. "
        '{"path": "ratings.csv", "user": "user", "item": "movie"}; the options below override it',
    )
    group.add_argument("--user-col", metavar="COLUMN", help="user id column (default user_id)")
    group.add_argument("--item-col", metavar="COLUMN", help="item id column (default item_id)")
    group.add_argument("--timestamp-col", metavar="COLUMN", help="timestamp column (needed by loo / temporal splits)")
    group.add_argument("--rating-col", metavar="COLUMN", help="rating column")
    group.add_argument("--label-col", metavar="COLUMN", help="0 / 1 label column (CTR models)")
    group.add_argument("--user-features", type=column_names, metavar="A,B", help="user feature columns")
    group.add_argument("--item-features", type=column_names, metavar="C,D", help="item feature columns")
    group.add_argument(
        "--list-features", type=column_names, metavar="C", help="feature columns holding lists, e.g. genres (a|b)"
    )
    group.add_argument("--format", help="csv, tsv, parquet, sequences or pairs (default: from the file extension)")
    group.add_argument("--sep", help="field separator of a text file (default , for CSV, tab for TSV)")


def own_data(args) -> Optional[Dict[str, Any]]:
    """The ``tfrecs.data.from_files`` keywords that ``--data`` / ``--data-config`` and the column options give.

    Returns None without ``--data`` / ``--data-config``. ``--dataset``, when given, becomes the
    data set's ``name``.

    Raises:
        InputError: a column option without ``--data``, or ``--data-dir`` with it.
        DataNotFoundError: the data (or config) file does not exist.
    """
    from tfrecs.core.errors import InputError

    path, config = getattr(args, "data", None), getattr(args, "data_config", None)
    given = {key: getattr(args, dest) for dest, key in _DATA_OPTIONS if getattr(args, dest, None) is not None}
    if path is None and config is None:
        if given:
            option = next(dest for dest, key in _DATA_OPTIONS if key in given).replace("_", "-")
            raise InputError(f"--{option} describes a file given with --data (or --data-config); neither was given")
        return None
    if getattr(args, "data_dir", None):
        raise InputError("--data-dir locates a named data set; with --data / --data-config give the file itself")
    if config is not None:
        from tfrecs.data import read_data_config

        kwargs = read_data_config(config)
    else:
        from tfrecs.data import DataNotFoundError

        if not os.path.isfile(path):
            what = "is a directory; give the data file" if os.path.isdir(path) else "no such file"
            raise DataNotFoundError(f"--data {path}: {what}")
        kwargs = {"path": path}
    kwargs.update(given)
    if getattr(args, "dataset", None):
        kwargs["name"] = args.dataset
    return kwargs


def dataset_label(args, data: Optional[Dict[str, Any]]) -> str:
    """What figures call the data: ``--dataset``, else the own data's name or file name, else ``ml-100k``."""
    if getattr(args, "dataset", None):
        return args.dataset
    if data:
        if data.get("name"):
            return data["name"]
        base = os.path.basename(str(data["path"]).rstrip(os.sep))
        for suffix in (".gz", ".csv", ".tsv", ".tab", ".parquet", ".pq", ".txt"):
            if base.lower().endswith(suffix):
                base = base[: -len(suffix)]
        return base or "own"
    return "ml-100k"


def load_data(args, data: Optional[Dict[str, Any]]):
    """``from_files(**data)``, or the named data set of ``args``."""
    if data is not None:
        from tfrecs.data import from_files

        return from_files(**data)
    from tfrecs.data import load_dataset

    return load_dataset(args.dataset or "ml-100k", data_dir=args.data_dir, cache_dir=args.cache_dir, seed=args.seed)


def _cmd_data_fetch(args) -> None:
    from tfrecs.data import fetch_dataset

    if args.brief:
        print(f"fetching {args.dataset} ...", end=" ", flush=True)
    location = fetch_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir)
    if args.brief:
        print(f"done ({location})", flush=True)
    else:
        print(json.dumps({"dataset": args.dataset, "location": location}))


def _cmd_data_stats(args) -> None:
    from tfrecs.core.errors import InputError
    from tfrecs.data import make_split

    data = own_data(args)
    if data is None and not args.dataset:
        raise InputError("name a data set (e.g. tfrecs data stats ml-100k) or give --data FILE")
    name = dataset_label(args, data)
    ds = load_data(args, data)
    stats = {"dataset": name, **{key: value for key, value in ds.stats().items() if key != "dataset"}}
    if args.split:
        split = make_split(ds, args.split, seed=args.seed)
        stats.update({f"{args.split}_{part}_interactions": size for part, size in split.sizes().items()})
    density = stats.get("density")
    brief = f"{name}: {stats['num_users']} users, {stats['num_items']} items, {stats['num_interactions']} interactions"
    brief += f" (density {density:.2%})" if isinstance(density, float) else ""
    report(args, f"{name} statistics", stats, brief)


def _cmd_evaluate(args) -> None:
    if args.run_dir:
        _evaluate_run(args)
        return
    if not args.model:
        from tfrecs.core.errors import InputError

        raise InputError("name the model to evaluate: --run-dir R (a trained run) or --model M (e.g. pop)")
    data = own_data(args)  # before TensorFlow loads: a wrong path fails at once
    name = dataset_label(args, data)
    protocol, part, ks = args.protocol or "loo-full", args.split or "test", args.k or [10, 20]
    args.seed = 2020 if args.seed is None else args.seed

    from tfrecs import models
    from tfrecs.data import make_split
    from tfrecs.evaluation.protocols import evaluate_protocol, protocol_split_name

    model_cls = models.get(args.model)
    split_name = protocol_split_name(protocol)
    if not hasattr(model_cls, "from_dataset"):
        raise ValueError(
            f"model {args.model!r} is trained first: tfrecs train --model {args.model} --run-dir R, "
            "then tfrecs evaluate --run-dir R"
        )
    ds = load_data(args, data)
    split = make_split(ds, split_name, seed=args.seed)
    model = model_cls.from_dataset(split.train)
    figures = evaluate_protocol(
        model, split, protocol, stage=part, ks=ks, num_negatives=args.negatives or 100, seed=args.seed
    )
    figures = {"model": args.model, "dataset": name, "seed": args.seed, **figures}
    report(
        args,
        f"{args.model} on {name} ({protocol}, {part})",
        figures,
        f"{args.model} on {name} ({protocol}, {part} split): {headline(figures)}",
    )


def _refuse_with_run_dir(args, command: str, names) -> None:
    """--run-dir fixes the data and the model: options that would change them are errors."""
    from tfrecs.core.errors import InputError

    given = [name for name in names if getattr(args, name, None) not in (None, [], False)]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(
            f"tfrecs {command} --run-dir uses the run's own model, data and seed; drop {options} "
            "(or train a new run with them)"
        )


DATA_OPTION_NAMES = ("dataset", "data", "data_config", "data_dir") + tuple(dest for dest, _ in _DATA_OPTIONS)


def run_config(args, run_dir: str, **overrides):
    """The ``TrainConfig`` that restores the finished run in ``run_dir`` (checks ``--model`` against it)."""
    from tfrecs.core.errors import InputError
    from tfrecs.recipes.run_dir import config_from_run

    config = config_from_run(run_dir, verbose=keras_verbose(args), **overrides)
    if getattr(args, "model", None) and args.model != config.model:
        raise InputError(f"--run-dir {run_dir} holds a {config.model} run, not --model {args.model}")
    return config


def epochs_text(epochs: Any) -> str:
    """``1 epoch``, ``3 epochs``."""
    return f"{epochs} epoch" + ("" if epochs == 1 else "s")


def trained_from_run(args, config):
    """``tfrecs.recipes.train`` of a restored run config (no fitting); under ``--brief`` one line."""
    from tfrecs.recipes import train

    result = train(config)
    figures = result.figures
    step(
        args,
        f"loaded {config.model} trained in {config.restore_from} ({epochs_text(figures.get('epochs'))}; not retrained)",
    )
    return result


def _evaluate_run(args) -> None:
    _refuse_with_run_dir(args, "evaluate", DATA_OPTION_NAMES + ("seed",))
    evaluation = {
        "protocol": args.protocol,
        "split": args.split,
        "ks": args.k,
        "num_negatives": args.negatives,
    }
    config = run_config(args, args.run_dir, evaluation={k: v for k, v in evaluation.items() if v is not None})
    result = trained_from_run(args, config)
    figures = {"model": config.model, "dataset": config.dataset, **result.figures}
    where = f"{figures.get('protocol', '')}, {figures.get('split', 'test')}"
    report(
        args,
        f"{config.model} on {config.dataset} ({where}) from {args.run_dir}",
        figures,
        f"{config.model} on {config.dataset} ({where} split) from {args.run_dir}: {headline(figures)}",
    )


def _list_params(model: str) -> None:
    """Prints every ``--set`` key of ``model``: model keywords, then training settings."""
    from tfrecs.recipes.registry import recipe_parameters

    rows = recipe_parameters(model)
    print(f"--set keys of {model} (KEY=VALUE; lists as 64,32):")
    for kind in ("model", "training"):
        print(f"  {kind} {'hyper-parameters' if kind == 'model' else 'settings'}:")
        for key, default, row_kind, meaning in rows:
            if row_kind == kind:
                shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
                print(f"    {key:<28} {str(shown):<16} {meaning}")


def train_config(args, model: str, overrides: Dict[str, Any], data: Optional[Dict[str, Any]]):
    """The ``TrainConfig`` of ``tfrecs train`` / ``tfrecs export`` for ``model``."""
    from tfrecs.recipes import TrainConfig

    return TrainConfig(
        model=model,
        dataset=dataset_label(args, data),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        strategy=getattr(args, "strategy", "auto"),
        precision=getattr(args, "precision", "float32"),
        run_dir=getattr(args, "run_dir", None),
        hparams=overrides,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        verbose=keras_verbose(args),
        data=data,
        tfrecords=getattr(args, "tfrecords", None),
    )


def train_announced(args, config):
    """``tfrecs.recipes.train(config)``; under ``--brief`` a line before (epochs) and after (figures)."""
    from tfrecs.recipes import train

    if getattr(args, "brief", False):
        epochs = config.epochs or config.hparams.get("epochs")  # --epochs, --set epochs=N
        if epochs is None:
            from tfrecs.recipes.registry import recipe_parameters

            try:
                epochs = {
                    key: value for key, value, kind, _ in recipe_parameters(config.model) if kind == "training"
                }.get("epochs")
            except KeyError:
                epochs = None
        limit = f" ({epochs_text(epochs)} max)" if isinstance(epochs, int) else ""
        step(args, f"training {config.model} on {config.dataset}{limit} ...")
    result = train(config)
    if getattr(args, "brief", False):
        figures = result.figures
        epochs_run = figures.get("epochs")
        ran = f" after {epochs_text(epochs_run)}" if epochs_run is not None else ""
        best = f" (best {figures['best_epoch']})" if figures.get("best_epoch") not in (None, epochs_run) else ""
        split = figures.get("split", "test")
        step(args, f"trained {config.model}{ran}{best}; {split} {headline(figures)}")
    return result


def _joins_parameter_server_cluster(args) -> bool:
    """``--strategy parameter_server`` (or ``auto`` with ``ps`` tasks in ``TF_CONFIG``): a worker or ps
    process serves the cluster until the job ends (returns True: nothing else to do); the chief
    connects to the cluster before any data or lookup table exists (returns False and trains)."""
    if args.strategy not in ("auto", "parameter_server"):
        return False
    from tfrecs import training

    if args.strategy == "auto" and not training.strategy.names_parameter_servers():
        return False
    task = training.read_parameter_server_config()["task"]["type"]
    if task in ("worker", "ps"):
        print(f"tfrecs: serving as {task} of the parameter-server job in TF_CONFIG", file=sys.stderr, flush=True)
        training.serve_cluster_task()
        return True
    training.configure(strategy="parameter_server")
    return False


def _cmd_train(args) -> None:
    from tfrecs.recipes import parse_overrides

    if args.list_params:
        _list_params(args.model)
        return
    if _joins_parameter_server_cluster(args):
        return
    data = own_data(args)
    config = train_config(args, args.model, parse_overrides(args.set), data)
    result = train_announced(args, config)
    if config.run_dir:
        print(
            f"saved the trained model, its settings and figures in {config.run_dir} "
            f"(tfrecs evaluate --run-dir / tfrecs export --run-dir use it)",
            flush=True,
        )
    if not args.brief:  # under --brief, train_announced's last line said it all
        _print_figures(
            f"{args.model} on {config.dataset}", {"model": args.model, "dataset": config.dataset, **result.figures}
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``tfrecs`` command (imports no TensorFlow: ``--help`` is fast)."""
    parser = OneLineParser(
        prog="tfrecs",
        description="TensorFlow / Keras recommenders on TFRS.",
        epilog=_catalogue_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print tfrecs' version and its stack's, then exit")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    add_output_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser(
        "data",
        help="fetch data sets and print their statistics",
        description="Fetch data sets and print their statistics.",
    )
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_commands.add_parser(
        "fetch",
        help="make a data set available offline",
        description="Make a data set available offline (ML-100K: into the cache).",
    )
    fetch.add_argument("dataset", help="data set name, e.g. ml-100k")
    add_data_source_args(fetch, own_data=False)
    add_output_options(fetch)
    fetch.set_defaults(run=_cmd_data_fetch)
    stats = data_commands.add_parser(
        "stats",
        help="print a data set's statistics",
        description="Print a data set's statistics (a named data set, or your own file with --data), "
        "ending with one JSON line.",
    )
    stats.add_argument("dataset", nargs="?", help="data set name, e.g. ml-100k (with --data: the name shown)")
    stats.add_argument("--split", help="also print the part sizes of this split (loo, random, random-global, temporal)")
    stats.add_argument("--seed", type=int, default=2020, help="seed of random splits and synthetic data")
    add_data_source_args(stats)
    add_output_options(stats)
    stats.set_defaults(run=_cmd_data_stats)

    train = commands.add_parser(
        "train",
        help="train a model and report its test figures",
        description="Train a model with its recipe (paper defaults unless overridden), "
        "evaluate it, and end with one JSON line of test figures.",
    )
    train.add_argument("--model", required=True, help="model name, e.g. two_tower (tfrecs --help lists them)")
    train.add_argument(
        "--dataset", help="data set name (default ml-100k; with --data: the name shown, default the file's)"
    )
    train.add_argument("--epochs", type=positive_int, help="maximum epochs (default: the recipe's)")
    train.add_argument("--batch-size", type=positive_int, help="global batch size (default: the recipe's)")
    train.add_argument("--learning-rate", type=positive_float, help="learning rate (default: the recipe's)")
    train.add_argument("--seed", type=int, default=2020, help="seed of split, initialisation and sampling")
    train.add_argument(
        "--strategy", default="auto", help="auto, one_device, mirrored, multi_worker or parameter_server (TF_CONFIG)"
    )
    train.add_argument("--precision", default="float32", help="float32, mixed_float16 or mixed_bfloat16")
    train.add_argument("--run-dir", help="directory for TensorBoard logs, checkpoints and backups")
    train.add_argument(
        "--tfrecords",
        metavar="DIR",
        help="train from what a pipelines/ script wrote to DIR (build_tfrecords: CTR models; "
        "sample_negatives: neumf, lightgcn; window_sequences: sasrec, bert4rec)",
    )
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model hyper-parameter (repeatable), e.g. --set embedding_dim=64",
    )
    add_verbose_option(train)
    train.add_argument(
        "--list-params",
        action="store_true",
        help="print every --set key of --model with its default and meaning, then exit",
    )
    add_data_source_args(train)
    add_output_options(train)
    train.set_defaults(run=_cmd_train)

    from tfrecs.cli_export import add_export_parser

    add_export_parser(commands)

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a trained run, or a baseline, on a protocol",
        description="Evaluate the model a `tfrecs train --run-dir R` trained (--run-dir R: no retraining), "
        "or a baseline that needs no training (--model pop), on a named protocol, ending with one JSON line.",
    )
    evaluate.add_argument(
        "--run-dir", help="a finished tfrecs train --run-dir: evaluate its model (data and seed from it)"
    )
    evaluate.add_argument("--model", help="model name without --run-dir, e.g. pop (tfrecs --help lists them)")
    evaluate.add_argument(
        "--dataset", help="data set name (default ml-100k; with --data: the name shown, default the file's)"
    )
    evaluate.add_argument(
        "--protocol",
        help=f"{', '.join(PROTOCOL_NAMES[:-1])} or {PROTOCOL_NAMES[-1]} "
        "(default loo-full; with --run-dir: the run's own, or another on the split it was trained on)",
    )
    evaluate.add_argument("--split", choices=("valid", "test"), help="part to measure (default test)")
    evaluate.add_argument("--k", type=positive_int, nargs="+", help="cut-offs (default 10 20)")
    evaluate.add_argument(
        "--negatives", type=positive_int, help="negatives per positive, sampled protocols (default 100)"
    )
    evaluate.add_argument(
        "--seed", type=int, help="seed of the split and of sampled negatives (default 2020; with --run-dir: the run's)"
    )
    add_data_source_args(evaluate)
    add_output_options(evaluate)
    evaluate.set_defaults(run=_cmd_evaluate)
    return parser


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    """Keras ``--verbose`` (default: progress bars in a terminal, one line per epoch otherwise)."""
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        help="Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch "
        "(default: 1 in a terminal, else 2; 0 with --brief)",
    )


def _install_signal_handlers() -> Dict[int, object]:
    """SIGTERM unwinds (``Stopped``: at once, or at the next batch boundary inside a fit, see
    ``tfrecs.core.stopping``); SIGXFSZ is ignored, so writing past a file-size limit is an
    ``OSError`` (``File too large``) reported in one line, not a core dump. Returns the
    previous handlers (``main`` restores them: tests call it in-process)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    stopping.reset()
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, stopping.on_sigterm)}
    if hasattr(signal, "SIGXFSZ"):
        previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return previous


def _restore_signal_handlers(previous: Dict[int, object]) -> None:
    import signal

    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _backup_epochs(run_dir: str) -> Optional[int]:
    """Completed epochs in the Keras backup of ``run_dir`` (None: no readable backup)."""
    import os

    tf = sys.modules.get("tensorflow")
    chief = os.path.join(run_dir, "backup", "chief")
    if tf is None or not os.path.isdir(chief):
        return None
    try:
        path = tf.train.latest_checkpoint(chief)
        if path is None:
            return None
        return int(tf.train.load_variable(path, "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")) + 1
    except Exception:  # noqa: BLE001 - a message, not a verdict: fall back to the plain wording
        return 0


def _what_was_kept(args) -> str:
    """The second half of the stop line: what a stopped command leaves and how to go on."""
    command = getattr(args, "command", None)
    run_dir = getattr(args, "run_dir", None)
    if command == "train" and run_dir:
        epochs = _backup_epochs(run_dir)
        if epochs is None:
            return f"no epoch was completed, so {run_dir} holds nothing to resume; the same command starts again"
        done = f" ({epochs} epoch(s) completed)" if epochs else ""
        return f"{run_dir}/backup keeps the last completed epoch{done}; run the same command again to resume"
    if command == "train":
        return "nothing was kept (no --run-dir); the same command starts again"
    if command == "export":
        return "no export version was written; the next export removes any temporary directory"
    return "nothing was written"


def _write_error(error: BaseException) -> Optional[str]:
    """The one-line message of a TensorFlow write failure (disk full, file-size limit), or None."""
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, tf.errors.OpError):
        return None
    import re

    text = " ".join(str(error.message).split())
    text = re.sub(r"\s*\[Op:\w+\]", "", re.sub(r"\{\{[^}]*\}\}\s*", "", text))
    if "File too large" in text or "No space left" in text:
        return f"cannot write: {text} (disk full or a file-size limit?)"
    return None


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``tfrecs`` console script; returns the exit status.

    Errors tfrecs names itself (``TfrecsError``, and the ``ValueError`` / ``KeyError`` /
    ``OSError`` of bad input) print one line ``tfrecs: error: <message>`` and exit 2;
    ``--debug`` re-raises them with their traceback. SIGTERM and Ctrl-C unwind the command
    and print one line ``tfrecs: stopped by SIGTERM; <what was kept>`` (exit 143; Ctrl-C:
    ``interrupted``, 130): a ``train --run-dir R`` keeps its backup and the same command
    resumes from it. SIGXFSZ is ignored, so a file-size limit is a one-line write error.
    As the console command (``argv`` None) it first quietens TensorFlow, absl and ScaNN
    (``tfrecs.logs.setup``, before TensorFlow loads); called with ``argv`` it changes no
    process-wide logging.
    """
    args = build_parser().parse_args(argv)
    if argv is None:
        logs.setup(args.log_level)
    previous = _install_signal_handlers()
    try:
        args.run(args)
    except (Stopped, KeyboardInterrupt) as stop:
        _restore_signal_handlers(previous)
        previous = {}
        if args.debug:
            raise
        how, status = ("stopped by SIGTERM", Stopped.status) if isinstance(stop, Stopped) else ("interrupted", 130)
        print(f"tfrecs: {how}; {_what_was_kept(args)}", file=sys.stderr, flush=True)
        return status
    except (KeyError, ValueError, OSError, RuntimeError) as error:
        from tfrecs.core.errors import TfrecsError

        if args.debug or not isinstance(error, (TfrecsError, KeyError, ValueError, OSError)):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"tfrecs: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2
    except Exception as error:
        message = _write_error(error)
        if args.debug or message is None:
            raise
        print(f"tfrecs: error: {message}", file=sys.stderr)
        return 2
    finally:
        _restore_signal_handlers(previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
