"""Build sharded TFRecords (with schema.json) from a data set.

    python pipelines/build_tfrecords.py --dataset ml-100k --split loo --fit-spec --output /tmp/ml100k
    python pipelines/build_tfrecords.py --dataset synthetic-ctr --num-interactions 10000000 --output /tmp/ctr
    python pipelines/build_tfrecords.py --dataset ml-1m --data-dir ~/data/ml-1m --split random --output /tmp/ml1m
    python pipelines/build_tfrecords.py --dataset ml-100k --split random-global --history-length 50 --output /tmp/ctr
    tfrecs train --model din --tfrecords /tmp/ctr          # trains from /tmp/ctr/train

Interaction data sets are written with their joined user / item features plus the dense
``user_index`` / ``item_index`` columns; ``--split`` writes ``train/``, ``valid/`` and
``test/`` directories. ``synthetic-ctr`` streams Criteo-schema rows (``I1..I13``,
``C1..C26``, ``label``) chunk by chunk, in constant memory. Ends with a summary and one
JSON line. Any data set ``tfrecs.data.load_dataset`` knows is accepted (``--data-dir`` reads
it from a directory of your own), and so is your own file with the options of ``tfrecs
train`` (``--data ratings.csv --user-col user --item-col movie --rating-col stars ...``);
ML-100K gets its full FeatureSpec, the others one of their ids and rating. The CTR models
(``tfrecs train --model deepfm --tfrecords DIR``) read ``--split random-global`` with the
run's ``--seed`` (default 2020 on both sides); DIN also its ``history`` (``--history-length``).
The output appears only when complete (see docs/failures.md).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs import cli  # noqa: E402  - the command line's data options (no TensorFlow)
from tfrecs.core.errors import InputError  # noqa: E402
from tfrecs.pipelines import script_utils  # noqa: E402

SPLITS = ("none", "loo", "random", "random-global")
DATASETS = script_utils.DATASETS + ("synthetic-ctr",)


def movielens_spec():
    from tfrecs.data import Feature, FeatureSpec

    return FeatureSpec(
        [
            Feature("user_id", "categorical"),
            Feature("item_id", "categorical"),
            Feature("rating", "numeric"),
            Feature("age", "numeric"),
            Feature("gender", "categorical"),
            Feature("occupation", "categorical"),
            Feature("zip_code", "categorical"),
            Feature("title", "text"),
            Feature("release_year", "numeric"),
            Feature("genres", "sequence"),
        ]
    )


def implicit_spec(user_dtype="int64", item_dtype="int64", rating=True):
    from tfrecs.data import Feature, FeatureSpec

    features = [
        Feature("user_id", "categorical", dtype=user_dtype),
        Feature("item_id", "categorical", dtype=item_dtype),
    ]
    return FeatureSpec(features + ([Feature("rating", "numeric")] if rating else []))


def dataset_spec(name, ds):
    """ML-100K's full FeatureSpec, else the spec of the ids (dtype as stored) and the rating if any."""
    import numpy as np

    if name == "ml-100k":
        return movielens_spec()
    kinds = {
        key: "int64" if np.asarray(ds.interactions[key]).dtype.kind in "iu" else "string"
        for key in ("user_id", "item_id")
    }
    return implicit_spec(kinds["user_id"], kinds["item_id"], rating="rating" in ds.interactions)


def interaction_columns(part):
    """Joined features plus dense indices of one data set part."""
    from tfrecs.data import joined_columns

    columns = joined_columns(part)
    columns["user_index"] = part.user_indices()
    columns["item_index"] = part.item_indices()
    return columns


def din_histories(split, length):
    """Each part's DIN ``history`` column, built exactly as the CTR recipe builds it
    (``tfrecs.pipelines.ctr_view``: each row's user's strictly earlier items, over the three parts)."""
    from tfrecs.pipelines.ctr_view import HISTORY, load_ctr_data

    view = load_ctr_data(split, history_length=length, features=["user_id"])
    return {part: view.columns[part][HISTORY] for part in view.columns}


def chunked(columns, size=65536):
    """A dict of columns as chunks (so the progress bar moves)."""
    total = len(next(iter(columns.values())))
    for start in range(0, total, size):
        yield {name: values[start : start + size] for name, values in columns.items()}


def main(argv=None):
    parser = script_utils.script_parser(__doc__.split("\n")[0], cli.add_data_source_args, DATASETS)
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="none",
        help="interaction data sets: write train/valid/test directories of this split "
        "(the CTR models of tfrecs train --tfrecords read random-global)",
    )
    parser.add_argument(
        "--fit-spec",
        action="store_true",
        help="fit the FeatureSpec's vocabularies on the (training) data and save them in the schema",
    )
    parser.add_argument(
        "--history-length",
        type=int,
        help="with --split: also write DIN's history column, each row's user's last N strictly earlier "
        "items (tfrecs train --model din reads 50)",
    )
    parser.add_argument("--max-rows", type=int, help="write only the first N rows of each part (quick runs and tests)")
    parser.add_argument("--vocabulary-size", type=int, default=100_000, help="synthetic-ctr: ids per categorical field")
    args = script_utils.parse_args(parser, argv)
    script_utils.resolve_source(args, cli.own_data, cli.dataset_label)
    script_utils.check_positive(
        shards=args.shards, num_interactions=args.num_interactions, vocabulary_size=args.vocabulary_size
    )
    if args.max_rows is not None:
        script_utils.check_positive(max_rows=args.max_rows)
    if args.history_length is not None:
        script_utils.check_positive(history_length=args.history_length)
        if args.split == "none":
            raise InputError("--history-length: histories are built over a split's parts; add --split")
    started = time.perf_counter()
    metadata = script_utils.source_metadata(
        args, "build_tfrecords", split=args.split, history_length=args.history_length, max_rows=args.max_rows
    )
    generated = args.source is None and args.dataset in ("synthetic-ctr", "synthetic-implicit")

    if generated and args.dataset == "synthetic-ctr":
        from tfrecs.data import criteo_feature_spec, iter_synthetic_ctr

        if args.split != "none":
            raise InputError("--split: synthetic-ctr rows are i.i.d.; write one directory and split at read time")
        spec = criteo_feature_spec()
        parts = {"": lambda: iter_synthetic_ctr(args.num_interactions, args.vocabulary_size, seed=args.seed)}
        totals = {"": args.num_interactions}
    elif generated and args.split == "none":
        from tfrecs.data import iter_synthetic_implicit

        spec = implicit_spec()
        per_user = min(script_utils.SYNTHETIC_INTERACTIONS_PER_USER, args.num_items)
        num_users = -(-args.num_interactions // per_user)

        def stream():  # ids are already dense indices (0..n-1)
            for chunk in iter_synthetic_implicit(num_users, args.num_items, per_user, seed=args.seed):
                yield dict(chunk, user_index=chunk["user_id"], item_index=chunk["item_id"])

        parts, totals = {"": stream}, {"": num_users * per_user}
    else:
        from tfrecs.data import make_split

        ds = script_utils.load_source(args)
        spec = dataset_spec(args.dataset if args.source is None else "", ds)
        if args.split == "none":
            pieces = {"": ds}
        else:
            split = make_split(ds, args.split, seed=args.seed)
            pieces = {"train": split.train, "valid": split.valid, "test": split.test}
        if args.fit_spec:
            spec = spec.fit(interaction_columns(pieces.get("train", ds)))
        histories = din_histories(split, args.history_length) if args.history_length else {}

        def part_columns(name, part):
            columns = interaction_columns(part)
            return dict(columns, history=histories[name]) if name in histories else columns

        parts = {
            name: (lambda name=name, part=part: chunked(part_columns(name, part))) for name, part in pieces.items()
        }
        totals = {name: len(part) for name, part in pieces.items()}

    if args.max_rows is not None:
        parts = {
            name: (lambda make=make: script_utils.first_rows(make(), args.max_rows)) for name, make in parts.items()
        }
        totals = {name: min(total, args.max_rows) for name, total in totals.items()}
    figures = script_utils.write_parts(parts, args.output, totals, args, spec=spec, metadata=metadata)
    script_utils.print_summary(
        f"build_tfrecords: {args.dataset}",
        {"script": "build_tfrecords", "dataset": args.dataset, "split": args.split, **figures},
        started,
    )


if __name__ == "__main__":
    script_utils.run(main)
