"""``tfrecs export``: train a model with its recipe, then export it in TF Serving's layout.

    tfrecs export --model two_tower --dataset ml-100k --index scann --k 10
    tfrecs export --model two_tower --rerank deepfm --num-candidates 100 --k 10   # two-stage
    tfrecs export --model deepfm                                                  # ranking

The trained ``TrainResult`` is exported by its artifacts (``tfrecs.export.export_trained``)
into ``<export-root>/<model-name>/<version>/`` and ``<export-root>/models.config`` is
rewritten. The last line printed is JSON: the test figures plus the export's path,
version, kind, size and index build time.

``cli.py`` registers it with ``add_export_parser(subcommands)``; ``run_export(args)`` runs it.
"""

import argparse
import json
from typing import Any, Dict, Optional


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the ``export`` subcommand to ``subparsers``; returns its parser (``run`` = ``run_export``)."""
    from tfrecs.cli import add_data_source_args, add_output_options, add_verbose_option, positive_float, positive_int

    parser = subparsers.add_parser(
        "export",
        help="train a model, then export it as a TF Serving SavedModel",
        description="Train a model with its recipe, then export it (retrieval with a ScaNN or brute-force index, "
        "ranking, or retrieve-then-rank with --rerank) to <export-root>/<model-name>/<version>/, "
        "ending with one JSON line.",
    )
    parser.add_argument("--model", required=True, help="model name, e.g. two_tower (tfrecs --help lists them)")
    parser.add_argument(
        "--dataset", help="data set name (default ml-100k; with --data: the name shown, default the file's)"
    )
    parser.add_argument(
        "--index",
        default="scann",
        choices=("scann", "brute_force"),
        help="retrieval index embedded in the export (default scann)",
    )
    parser.add_argument("--k", type=positive_int, default=10, help="answers per query, fixed at export (default 10)")
    parser.add_argument(
        "--show-user",
        metavar="USER_ID",
        help="after exporting, reload the export from disk and print its top-k for this user",
    )
    parser.add_argument(
        "--index-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="ScaNN parameter override (repeatable): num_leaves, num_leaves_to_search, "
        "num_reordering_candidates, dimensions_per_block, training_iterations",
    )
    parser.add_argument("--rerank", metavar="MODEL", help="also train this ranking model and export two-stage")
    parser.add_argument(
        "--num-candidates", type=positive_int, default=100, help="candidates re-ranked per query (two-stage)"
    )
    parser.add_argument("--export-root", default="saved_models", help="TF Serving root (default saved_models)")
    parser.add_argument("--model-name", help="TF Serving model name (default: --model, or MODEL_then_RERANK)")
    parser.add_argument("--version", type=int, help="integer version (default: next free)")
    parser.add_argument(
        "--base-path-prefix",
        default="/models",
        help="where --export-root is mounted in the server, for models.config (default /models)",
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the TF Serving warmup file")
    parser.add_argument("--epochs", type=positive_int, help="maximum epochs (default: the recipe's)")
    parser.add_argument("--batch-size", type=positive_int, help="global batch size (default: the recipe's)")
    parser.add_argument("--learning-rate", type=positive_float, help="learning rate (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=2020, help="seed of split, initialisation and sampling")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyper-parameter of --model (repeatable)",
    )
    add_verbose_option(parser)
    add_data_source_args(parser)
    add_output_options(parser)
    parser.set_defaults(run=run_export)
    return parser


def _train(args, model: str, overrides: Dict[str, Any], data: Optional[Dict[str, Any]]):
    from tfrecs.cli import train_announced, train_config

    return train_announced(args, train_config(args, model, overrides, data))


def run_export(args) -> Dict[str, Any]:
    """Trains ``args.model`` (and ``args.rerank``), exports, prints and returns the figures.

    Raises:
        ValueError: bad arguments or a refused export (the message names the argument).
    """
    from tfrecs.cli import dataset_label, own_data, step
    from tfrecs.export import export_trained
    from tfrecs.recipes import parse_overrides

    if args.k < 1:
        raise ValueError(f"--k must be at least 1, got {args.k}")
    index_params = parse_overrides(args.index_param) or None
    if index_params and args.index != "scann":
        raise ValueError(f"--index-param applies to --index scann, not {args.index}")
    model_name = args.model_name or (f"{args.model}_then_{args.rerank}" if args.rerank else args.model)
    data = own_data(args)
    dataset = dataset_label(args, data)
    result = _train(args, args.model, parse_overrides(args.set), data)
    rerank = _train(args, args.rerank, {}, data) if args.rerank else None
    export = export_trained(
        result,
        args.export_root,
        model_name,
        index=args.index,
        k=args.k,
        scann_params=index_params,
        rerank=rerank,
        num_candidates=args.num_candidates,
        version=args.version,
        warmup=not args.no_warmup,
        base_path_prefix=args.base_path_prefix,
    )
    index = export.info.get("index") or {}
    figures = {
        "model": args.model,
        "dataset": dataset,
        **result.figures,
        "export_path": export.path,
        "export_version": export.version,
        "export_kind": export.kind,
        "export_mb": round(export.size_bytes / 2**20, 2),
        "export_seconds": export.seconds,
    }
    if index:
        figures.update({"index": index["kind"], "k": export.info["k"], "index_build_seconds": index["build_seconds"]})
    if getattr(args, "brief", False):
        what = f"{index['kind']} index, top {export.info['k']}" if index else export.kind
        step(args, f"exported to {export.path} ({what}, {figures['export_mb']} MB)")
    else:
        print(f"exported {export.kind} model {model_name!r} version {export.version} to {export.path}")
    if args.show_user is not None:
        _show_user(export.path, result.artifacts, args.show_user)
    if not getattr(args, "brief", False):
        print(json.dumps(figures, default=str))
    return figures


def _show_user(path: str, artifacts: Any, user_id: str) -> None:
    """Reloads the export from disk and prints its top-k for ``user_id`` (training items excluded)."""
    import numpy as np

    from tfrecs.export.preview import top_k_from_export

    per_user = getattr(artifacts, "user_query_features", None)
    if per_user is None:
        raise ValueError("--show-user needs a retrieval recipe that provides per-user query features")
    train = artifacts.split.train
    raw_ids = train.user_index.ids
    user = np.asarray([user_id]).astype(raw_ids.dtype)
    row = int(train.user_index.lookup(user)[0])
    query = {}
    if train.users is not None:  # the user's table row: features a re-ranker reads beside the query tower's
        table_row = np.flatnonzero(np.asarray(train.users["user_id"]) == user[0])
        if len(table_row):
            query = {name: np.asarray(values)[table_row[0]] for name, values in train.users.items()}
    query.update({name: values[row] for name, values in per_user.items()})
    seen = train.interactions["item_id"][train.interactions["user_id"] == user[0]]
    print(f"top recommendations for user {user_id} from the reloaded export (its {len(seen)} training items excluded):")
    for answer in top_k_from_export(path, query, exclude_item_ids=seen):
        print(
            f"  {answer['rank']:>2}. {answer.get('title', answer['item_id'])}  (item {answer['item_id']}, score {answer['score']:.3f})"
        )
