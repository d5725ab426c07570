"""Cut per-user sequences into training windows (leave-one-out) and write them as TFRecords.

    python pipelines/window_sequences.py --dataset ml-100k --max-len 50 --output /tmp/seq
    python pipelines/window_sequences.py --dataset synthetic-sequences --num-interactions 10000000 --mode cloze --output /tmp/seq
    tfrecs train --model sasrec --tfrecords /tmp/seq      # causal windows of --max-len 50 (bert4rec: --mode cloze)

The data set is split leave-one-out by time; ``train/`` holds windows cut from the training
part only (so no training target is a validation or test item), ``valid/`` and ``test/``
hold one example per user (the last ``max_len`` history ids -> the held-out item).
Ids: padding 0, item index + 1, mask id num_items + 1 (``tfrecs.pipelines.SequenceIds``).
``causal`` windows hold ``inputs``, ``targets``, ``target_mask`` (and ``negatives``
``[max_len * K]`` with ``--negatives K``); ``cloze`` windows hold unmasked ``inputs``, to
be masked per batch at training time (``tfrecs.pipelines.cloze_mask``). Ends with a
summary and one JSON line. Any data set ``tfrecs.data.load_dataset`` knows is accepted
(``--data-dir`` reads it from your own directory), and so is your own file with the
options of ``tfrecs train`` (``--data``, ``--user-col``, ``--timestamp-col``, ...); the output
appears only when complete (see docs/failures.md). ``tfrecs train --tfrecords`` reads the
``train/`` windows: sasrec causal ones, bert4rec cloze ones, of the model's ``max_len``.
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

BATCH = 8192


def main(argv=None):
    parser = script_utils.script_parser(__doc__.split("\n")[0], cli.add_data_source_args)
    parser.add_argument("--max-len", type=int, default=50, help="model sequence length (history cap)")
    parser.add_argument("--stride", type=int, help="items between window ends (default: --max-len)")
    parser.add_argument(
        "--mode",
        choices=("causal", "cloze"),
        default="causal",
        help="causal: next-item windows (SASRec); cloze: unmasked windows masked at training (BERT4Rec)",
    )
    parser.add_argument(
        "--negatives",
        type=int,
        default=0,
        help="causal: negatives per target position written with the windows (0: sample at training)",
    )
    parser.add_argument(
        "--max-windows", type=int, help="write only the first N training windows (quick runs and tests)"
    )
    args = script_utils.parse_args(parser, argv)
    script_utils.resolve_source(args, cli.own_data, cli.dataset_label)
    script_utils.check_positive(shards=args.shards)
    for name in ("stride", "max_windows"):
        if getattr(args, name) is not None:
            script_utils.check_positive(**{name: getattr(args, name)})
    if args.max_len < 2:
        raise InputError(f"--max-len must be >= 2 (a sequence model needs at least two positions), got {args.max_len}")
    if args.negatives < 0 or (args.negatives and args.mode != "causal"):
        raise InputError(f"--negatives must be >= 0 and only applies to --mode causal, got {args.negatives}")
    started = time.perf_counter()

    import tensorflow as tf

    from tfrecs.data import make_split
    from tfrecs.pipelines import (
        PositiveIndex,
        SequenceIds,
        UniformSampler,
        add_causal_negatives,
        causal_windows,
        cloze_windows,
        holdout_examples,
        user_sequences,
    )

    split = make_split(script_utils.load_source(args), "loo")
    ids = SequenceIds(split.train.num_items)
    sequences = user_sequences(split.train)
    if args.mode == "causal":
        train = causal_windows(sequences, args.max_len, args.stride)
    else:
        train = cloze_windows(sequences, args.max_len, args.stride)
    train = {name: values[: args.max_windows] for name, values in train.items()}
    num_windows = len(train["user"])

    def train_chunks():
        batches = tf.data.Dataset.from_tensor_slices(train).batch(BATCH)
        if args.negatives:
            sampler = UniformSampler(ids.num_items, exclude=PositiveIndex.from_dataset(split.train))
            batches = add_causal_negatives(batches, sampler, args.negatives, seed=args.seed)
            batches = batches.map(
                lambda b: dict(b, negatives=tf.reshape(b["negatives"], [tf.shape(b["negatives"])[0], -1]))
            )
        yield from batches.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()

    held_out = {
        part: holdout_examples(split, part, args.max_len, append_mask=args.mode == "cloze")
        for part in ("valid", "test")
    }
    parts = {
        "train": train_chunks,
        "valid": lambda: iter([held_out["valid"]]),
        "test": lambda: iter([held_out["test"]]),
    }
    totals = {"train": num_windows, "valid": len(held_out["valid"]["user"]), "test": len(held_out["test"]["user"])}
    metadata = script_utils.source_metadata(
        args,
        "window_sequences",
        split="loo",
        mode=args.mode,
        max_len=args.max_len,
        stride=args.stride or args.max_len,
        negatives=args.negatives,
        max_windows=args.max_windows,
        padding_id=ids.padding,
        item_offset=ids.offset,
        mask_id=ids.mask,
        num_items=ids.num_items,
        vocabulary_size=ids.vocabulary_size,
    )
    figures = script_utils.write_parts(parts, args.output, totals, args, metadata=metadata)
    extra = {"target_positions": int(train["target_mask"].sum())} if args.mode == "causal" else {}
    script_utils.print_summary(
        f"window_sequences: {args.dataset} ({args.mode}, max_len {args.max_len})",
        {
            "script": "window_sequences",
            "dataset": args.dataset,
            "split": "loo",
            "mode": args.mode,
            "max_len": args.max_len,
            "interactions": len(split.train) + len(split.valid) + len(split.test),
            "windows": num_windows,
            **extra,
            **figures,
        },
        started,
    )


if __name__ == "__main__":
    script_utils.run(main)
