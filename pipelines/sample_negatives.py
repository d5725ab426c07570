"""Sample negatives for every positive interaction and write them as TFRecords.

    python pipelines/sample_negatives.py --dataset ml-100k --split loo --sampler popularity --negatives 4 --output /tmp/neg
    python pipelines/sample_negatives.py --dataset synthetic-implicit --num-interactions 10000000 --output-format pairwise --output /tmp/bpr
    python pipelines/sample_negatives.py --dataset ml-100k --split random --output /tmp/ncf
    tfrecs train --model neumf --tfrecords /tmp/ncf          # trains from /tmp/ncf/train

Positives are the interactions (the training part with ``--split``, then written to
``train/``) as dense indices. ``--output-format pointwise`` writes ``user_index, item_index,
label`` rows (each positive, label 1, followed by its K negatives, label 0); ``pairwise``
writes BPR triples ``user_index, item_index, negative_item_index``. Negatives exclude the
user's own positives unless ``--no-exclude-positives``. Draws are stateless and seeded: the
same ``--seed`` writes the same records. Any data set ``tfrecs.data.load_dataset`` knows is
accepted (``--data-dir`` reads it from your own directory), and so is your own file with the
options of ``tfrecs train`` (``--data``, ``--user-col``, ...; ``--format`` is the file's
format there, as in ``tfrecs train``). ``tfrecs train --tfrecords`` reads ``--split random``
with the run's ``--seed`` (default 2020 on both sides): neumf pointwise records, lightgcn
pairwise ones. ``--alpha`` must be a finite number >= 0. The output appears only when
complete (see docs/failures.md). Ends with a summary and one JSON line.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs import cli  # noqa: E402  - the command line's data options (no TensorFlow)
from tfrecs.core.errors import InputError  # noqa: E402
from tfrecs.pipelines import script_utils  # noqa: E402

FORMATS = ("pointwise", "pairwise")


def main(argv=None):
    parser = script_utils.script_parser(__doc__.split("\n")[0], cli.add_data_source_args)
    parser.add_argument(
        "--split",
        choices=("none", "loo", "random"),
        default="none",
        help="sample for the training part of this split only, written to train/ "
        "(tfrecs train --tfrecords: neumf and lightgcn read random)",
    )
    parser.add_argument(
        "--sampler",
        choices=("uniform", "popularity"),
        default="popularity",
        help="uniform over the catalogue, or by popularity (count ** alpha)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.75,
        help="popularity exponent, a finite number >= 0: P(i) ~ count_i ** alpha "
        "(0: uniform over seen items, 1: frequency)",
    )
    parser.add_argument("--negatives", type=int, default=4, help="negatives per positive (K)")
    parser.add_argument(
        "--output-format",
        choices=FORMATS,
        default="pointwise",
        help="pointwise: (user, item, label) rows (neumf); pairwise: BPR (user, item, negative) triples (lightgcn)",
    )
    parser.add_argument(
        "--exclude-positives",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="never sample an item the user interacted with",
    )
    parser.add_argument("--batch-size", type=int, default=4096, help="positives per sampling batch")
    parser.add_argument(
        "--max-positives", type=int, help="sample for the first N positives only (quick runs and tests)"
    )
    args = script_utils.parse_args(parser, argv)
    if args.format in FORMATS:  # this script's --format before it took the command line's data options
        raise InputError(
            f"--format names the data file's format (csv, tsv, ...), as in tfrecs train; "
            f"the record layout is --output-format {args.format}"
        )
    script_utils.resolve_source(args, cli.own_data, cli.dataset_label)
    script_utils.check_positive(shards=args.shards, negatives=args.negatives, batch_size=args.batch_size)
    if args.max_positives is not None:
        script_utils.check_positive(max_positives=args.max_positives)
    script_utils.check_finite(alpha=args.alpha)
    started = time.perf_counter()

    import tensorflow as tf

    from tfrecs.data import make_split
    from tfrecs.pipelines import PopularitySampler, PositiveIndex, UniformSampler, item_counts, sample_negatives

    ds = script_utils.load_source(args)
    positives = ds if args.split == "none" else make_split(ds, args.split, seed=args.seed).train
    exclude = PositiveIndex.from_dataset(positives) if args.exclude_positives else None
    if args.sampler == "uniform":
        sampler = UniformSampler(positives.num_items, exclude=exclude)
    else:
        sampler = PopularitySampler(item_counts(positives), alpha=args.alpha, exclude=exclude)
    users, items = positives.user_indices()[: args.max_positives], positives.item_indices()[: args.max_positives]
    batches = tf.data.Dataset.from_tensor_slices({"user_index": users, "item_index": items}).batch(args.batch_size)
    sampled = sample_negatives(
        batches,
        sampler,
        args.negatives,
        output=args.output_format,
        seed=args.seed,
        user_key="user_index",
        item_key="item_index",
        negative_key="negative_item_index",
    )

    def chunks():
        for batch in sampled.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            yield batch

    per_positive = args.negatives + 1 if args.output_format == "pointwise" else args.negatives
    metadata = script_utils.source_metadata(
        args,
        "sample_negatives",
        split=args.split,
        sampler=args.sampler,
        alpha=args.alpha,
        negatives=args.negatives,
        format=args.output_format,
        exclude_positives=args.exclude_positives,
        num_users=int(positives.num_users),
        num_items=int(positives.num_items),
        max_positives=args.max_positives,
    )
    part = "" if args.split == "none" else "train"
    figures = script_utils.write_parts(
        {part: chunks}, args.output, {part: len(users) * per_positive}, args, metadata=metadata
    )
    figures.pop("all_records", None)
    script_utils.print_summary(
        f"sample_negatives: {args.dataset} ({args.sampler}, {args.output_format})",
        {
            "script": "sample_negatives",
            "dataset": args.dataset,
            "split": args.split,
            "sampler": args.sampler,
            "format": args.output_format,
            "negatives": args.negatives,
            "positives": len(users),
            **figures,
        },
        started,
    )


if __name__ == "__main__":
    script_utils.run(main)
