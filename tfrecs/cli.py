"""The ``tfrecs`` command line.

    tfrecs data fetch ml-100k
    tfrecs data stats ml-100k [--split loo]
    tfrecs evaluate --model pop --dataset ml-100k --protocol loo-full
    tfrecs train --model two_tower --dataset ml-100k
    tfrecs export --model two_tower --dataset ml-100k --index scann --k 10

Commands that compute results end with one JSON line of their figures (lower-case metric
names such as ``ndcg@10``, and ``split`` naming the part measured), for scripts and CI.
Bad input exits with status 2 and a message naming the argument, file or feature.
"""

import argparse
import json
import math
import sys
from typing import Dict, List, Optional


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


def _print_figures(title: str, figures: Dict[str, object]) -> None:
    print(title)
    for key, value in figures.items():
        if isinstance(value, (dict, list)):
            continue
        print(f"  {key:<32} {value:.4f}" if isinstance(value, float) else f"  {key:<32} {value}")
    print(json.dumps(figures, sort_keys=False))


def _add_data_source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="directory with the data set's files (GroupLens or RecBole layout)")
    parser.add_argument("--cache-dir", help="tfrecs cache root (default $TFRECS_CACHE_DIR or ~/.cache/tfrecs)")


def _cmd_data_fetch(args) -> None:
    from tfrecs.data import fetch_dataset

    location = fetch_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir)
    print(json.dumps({"dataset": args.dataset, "location": location}))


def _cmd_data_stats(args) -> None:
    from tfrecs.data import load_dataset, make_split

    ds = load_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir, seed=args.seed)
    stats = ds.stats()
    if args.split:
        split = make_split(ds, args.split, seed=args.seed)
        stats.update({f"{args.split}_{part}_interactions": size for part, size in split.sizes().items()})
    _print_figures(f"{args.dataset} statistics", stats)


def _cmd_evaluate(args) -> None:
    from tfrecs import models
    from tfrecs.data import load_dataset, make_split
    from tfrecs.evaluation.protocols import evaluate_protocol, protocol_split_name

    model_cls = models.get(args.model)
    split_name = protocol_split_name(args.protocol)
    ds = load_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir, seed=args.seed)
    split = make_split(ds, split_name, seed=args.seed)
    if not hasattr(model_cls, "from_dataset"):
        raise ValueError(f"model {args.model!r} must be trained first; use `tfrecs train --model {args.model}`")
    model = model_cls.from_dataset(split.train)
    figures = evaluate_protocol(
        model, split, args.protocol, stage=args.split, ks=args.k, num_negatives=args.negatives, seed=args.seed
    )
    _print_figures(
        f"{args.model} on {args.dataset} ({args.protocol}, {args.split})",
        {"model": args.model, "dataset": args.dataset, "seed": args.seed, **figures},
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


def _cmd_train(args) -> None:
    from tfrecs.recipes import TrainConfig, parse_overrides, train

    if args.list_params:
        _list_params(args.model)
        return

    config = TrainConfig(
        model=args.model,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        strategy=args.strategy,
        precision=args.precision,
        run_dir=args.run_dir,
        hparams=parse_overrides(args.set),
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        verbose=args.verbose,
    )
    result = train(config)
    _print_figures(f"{args.model} on {args.dataset}", {"model": args.model, "dataset": args.dataset, **result.figures})


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``tfrecs`` command."""
    parser = OneLineParser(prog="tfrecs", description="TensorFlow / Keras recommenders on TFRS.")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
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
    _add_data_source_args(fetch)
    fetch.set_defaults(run=_cmd_data_fetch)
    stats = data_commands.add_parser(
        "stats",
        help="print a data set's statistics",
        description="Print a data set's statistics, ending with one JSON line.",
    )
    stats.add_argument("dataset", help="data set name, e.g. ml-100k")
    stats.add_argument("--split", help="also print the part sizes of this split (loo, random, random-global, temporal)")
    stats.add_argument("--seed", type=int, default=2020, help="seed of random splits and synthetic data")
    _add_data_source_args(stats)
    stats.set_defaults(run=_cmd_data_stats)

    train = commands.add_parser(
        "train",
        help="train a model and report its test figures",
        description="Train a model with its recipe (paper defaults unless overridden), "
        "evaluate it, and end with one JSON line of test figures.",
    )
    train.add_argument("--model", required=True, help="model name, e.g. two_tower")
    train.add_argument("--dataset", default="ml-100k", help="data set name (default ml-100k)")
    train.add_argument("--epochs", type=positive_int, help="maximum epochs (default: the recipe's)")
    train.add_argument("--batch-size", type=positive_int, help="global batch size (default: the recipe's)")
    train.add_argument("--learning-rate", type=positive_float, help="learning rate (default: the recipe's)")
    train.add_argument("--seed", type=int, default=2020, help="seed of split, initialisation and sampling")
    train.add_argument("--strategy", default="auto", help="auto, one_device, mirrored or multi_worker")
    train.add_argument("--precision", default="float32", help="float32, mixed_float16 or mixed_bfloat16")
    train.add_argument("--run-dir", help="directory for TensorBoard logs, checkpoints and backups")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model hyper-parameter (repeatable), e.g. --set embedding_dim=64",
    )
    train.add_argument("--verbose", type=int, default=2, help="Keras verbosity: 0 silent, 1 progress bar, 2 per epoch")
    train.add_argument(
        "--list-params",
        action="store_true",
        help="print every --set key of --model with its default and meaning, then exit",
    )
    _add_data_source_args(train)
    train.set_defaults(run=_cmd_train)

    from tfrecs.cli_export import add_export_parser

    add_export_parser(commands)

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a model on a protocol",
        description="Evaluate a model on a named protocol, ending with one JSON line.",
    )
    evaluate.add_argument("--model", required=True, help="model name, e.g. pop")
    evaluate.add_argument("--dataset", default="ml-100k", help="data set name (default ml-100k)")
    evaluate.add_argument(
        "--protocol", default="loo-full", help="loo-full, loo-sampled, random-full or random-sampled (default loo-full)"
    )
    evaluate.add_argument("--split", default="test", choices=("valid", "test"), help="part to measure (default test)")
    evaluate.add_argument("--k", type=positive_int, nargs="+", default=[10, 20], help="cut-offs (default 10 20)")
    evaluate.add_argument(
        "--negatives", type=positive_int, default=100, help="negatives per positive, sampled protocols"
    )
    evaluate.add_argument("--seed", type=int, default=2020, help="seed of the split and of sampled negatives")
    _add_data_source_args(evaluate)
    evaluate.set_defaults(run=_cmd_evaluate)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``tfrecs`` console script; returns the exit status.

    Errors tfrecs names itself (``TfrecsError``, and the ``ValueError`` / ``KeyError`` /
    ``OSError`` of bad input) print one line ``tfrecs: error: <message>`` and exit 2;
    ``--debug`` re-raises them with their traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (KeyError, ValueError, OSError, RuntimeError) as error:
        from tfrecs.core.errors import TfrecsError

        if args.debug or not isinstance(error, (TfrecsError, KeyError, ValueError, OSError)):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"tfrecs: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
