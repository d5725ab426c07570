"""``tfrecs export``: export a trained run (or train, then export) in TF Serving's layout.

    tfrecs export --run-dir runs/two_tower --index scann --k 10                  # the model trained there
    tfrecs export --run-dir runs/two_tower --rerank-run-dir runs/deepfm          # two-stage, both trained
    tfrecs export --model two_tower --dataset ml-100k --index scann --k 10       # trains first
    tfrecs export --model two_tower --rerank deepfm --num-candidates 100 --k 10   # two-stage
    tfrecs export --model deepfm                                                  # ranking
    tfrecs export --run-dir runs/two_tower --index faiss-hnsw   # query tower + a FAISS index beside it

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
        help="export a trained run (or train, then export) as a TF Serving SavedModel",
        description="Export the model a `tfrecs train --run-dir R` trained (--run-dir R: no retraining), or "
        "train one with its recipe first (--model M), as retrieval with a ScaNN or brute-force index, ranking, "
        "or retrieve-then-rank (--rerank-run-dir / --rerank) to <export-root>/<model-name>/<version>/, "
        "ending with one JSON line.",
    )
    parser.add_argument("--run-dir", help="a finished tfrecs train --run-dir: export its model (no retraining)")
    parser.add_argument(
        "--rerank-run-dir", metavar="DIR", help="a finished ranking run: export retrieve-then-rank with its model"
    )
    parser.add_argument(
        "--model", help="model name to train and export without --run-dir, e.g. two_tower (tfrecs --help lists them)"
    )
    parser.add_argument(
        "--dataset", help="data set name (default ml-100k; with --data: the name shown, default the file's)"
    )
    parser.add_argument(
        "--index",
        default="scann",
        choices=("scann", "brute_force", "faiss-hnsw", "faiss-ivf"),
        help="retrieval index embedded in the export (default scann); faiss-hnsw / faiss-ivf: the query "
        "tower plus a FAISS index beside it in assets.extra/ (pip install 'tfrecs[faiss]')",
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
        help="index parameter override (repeatable). scann: num_leaves, num_leaves_to_search, "
        "num_reordering_candidates, dimensions_per_block, anisotropic_quantization_threshold (a number or none), "
        "training_iterations; faiss-hnsw: m, ef_construction, "
        "ef_search; faiss-ivf: nlist, nprobe",
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
    parser.add_argument(
        "--seed", type=int, help="seed of split, initialisation and sampling (default 2020; with --run-dir: the run's)"
    )
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


TRAINING_OPTIONS = ("epochs", "batch_size", "learning_rate", "set", "seed", "rerank")


def _train(args, model: str, overrides: Dict[str, Any], data: Optional[Dict[str, Any]]):
    from tfrecs.cli import train_announced, train_config

    args.seed = 2020 if args.seed is None else args.seed
    return train_announced(args, train_config(args, model, overrides, data))


def _trained_runs(args):
    """``(result, rerank result or None, model name, data set)`` of the runs to export: restored
    from ``--run-dir`` / ``--rerank-run-dir`` (nothing fitted), else trained now."""
    from tfrecs.cli import DATA_OPTION_NAMES, _refuse_with_run_dir, dataset_label, own_data, run_config
    from tfrecs.cli import trained_from_run
    from tfrecs.core.errors import InputError
    from tfrecs.recipes import parse_overrides

    if args.run_dir:
        _refuse_with_run_dir(args, "export", DATA_OPTION_NAMES + TRAINING_OPTIONS)
        result = trained_from_run(args, run_config(args, args.run_dir))
        rerank = trained_from_run(args, run_config(args, args.rerank_run_dir)) if args.rerank_run_dir else None
        model = result.record.get("model") or args.model
        rerank_model = rerank.record.get("model") if rerank else None
        return result, rerank, model, rerank_model, result.record.get("dataset")
    if args.rerank_run_dir:
        raise InputError("--rerank-run-dir goes with --run-dir (both runs trained); without them use --rerank MODEL")
    if not args.model:
        raise InputError("name what to export: --run-dir R (a trained run) or --model M (trained now)")
    data = own_data(args)
    result = _train(args, args.model, parse_overrides(args.set), data)
    rerank = _train(args, args.rerank, {}, data) if args.rerank else None
    return result, rerank, args.model, args.rerank, dataset_label(args, data)


def run_export(args) -> Dict[str, Any]:
    """Exports the run of ``--run-dir`` (or trains ``args.model``, and ``args.rerank``), prints and
    returns the figures.

    Raises:
        ValueError: bad arguments or a refused export (the message names the argument).
    """
    from tfrecs.cli import step
    from tfrecs.export import export_trained
    from tfrecs.recipes import parse_overrides

    if args.k < 1:
        raise ValueError(f"--k must be at least 1, got {args.k}")
    index_params = parse_overrides(args.index_param) or None
    if index_params and args.index == "brute_force":
        raise ValueError(f"--index-param applies to --index scann, faiss-hnsw or faiss-ivf, not {args.index}")
    if args.index.startswith("faiss"):  # before any training: a missing package or a bad key fails now
        from tfrecs.core.errors import InputError

        if args.rerank or args.rerank_run_dir:
            raise InputError(
                f"--index {args.index} serves neighbours from FAISS beside the SavedModel; a two-stage export "
                "keeps its index inside: use --index scann or brute_force"
            )
        from tfrecs.export.faiss_export import check_faiss_params
        from tfrecs.export.faiss_index import import_faiss

        try:
            import_faiss(args.index)
        except ImportError as error:
            raise InputError(str(error)) from None
        check_faiss_params(args.index, index_params)
    result, rerank, model, rerank_model, dataset = _trained_runs(args)
    model_name = args.model_name or (f"{model}_then_{rerank_model}" if rerank_model else model)
    export = export_trained(
        result,
        args.export_root,
        model_name,
        index=args.index,
        k=args.k,
        index_params=index_params,
        rerank=rerank,
        num_candidates=args.num_candidates,
        version=args.version,
        warmup=not args.no_warmup,
        base_path_prefix=args.base_path_prefix,
    )
    index = export.info.get("index") or {}
    figures = {
        "model": model,
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
    """Reloads the export from disk and prints its top-k for ``user_id``.

    The query is the user's row of ``artifacts.user_query_features`` (their ``user_id``, or
    their history for sequential and item-item models) plus their user-table row (features a
    re-ranker reads); the items the user trained on, and those of the history sent, are excluded.
    """
    import numpy as np

    from tfrecs.export.artifacts import CandidateScoringArtifacts, RankingArtifacts
    from tfrecs.export.preview import top_k_from_export, user_query

    if isinstance(artifacts, RankingArtifacts) and not isinstance(artifacts, CandidateScoringArtifacts):
        raise ValueError(
            "--show-user prints a user's top-k of a retrieval, NeuMF or two-stage export; a ranking model "
            "scores the rows it is given: put it behind a retriever, e.g. --model two_tower --rerank MODEL"
        )
    if getattr(artifacts, "user_query_features", None) is None or getattr(artifacts, "split", None) is None:
        raise ValueError(
            "--show-user needs the recipe's per-user query features and split (its export artifacts); "
            "this model's recipe does not return them"
        )
    query, seen = user_query(artifacts, user_id)
    history = query.get("history")
    if history is not None and np.ndim(history) == 1:  # a sequential query also holds validation items
        history = np.asarray(history)
        shown = history[history != ("" if history.dtype.kind in "OUS" else -1)].astype(seen.dtype)
        seen = np.concatenate([seen, shown[~np.isin(shown, seen)]])
    print(
        f"top recommendations for user {user_id} from the reloaded export "
        f"(its {len(seen)} training / history items excluded):"
    )
    for answer in top_k_from_export(path, query, exclude_item_ids=seen):
        print(
            f"  {answer['rank']:>2}. {answer.get('title', answer['item_id'])}  (item {answer['item_id']}, score {answer['score']:.3f})"
        )
