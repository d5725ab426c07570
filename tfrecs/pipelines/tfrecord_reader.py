"""Reads a ``write_tfrecords`` directory as batches, and never silently past damage.

Batch-then-parse: files are interleaved in parallel, each file is read in blocks that are
counted against the record count ``schema.json`` holds, blocks are re-batched to
``batch_size`` and parsed with one ``tf.io.parse_example`` per batch, with ``AUTOTUNE``
parallelism and prefetch.

TensorFlow itself stops at a truncated record without an error and reports a corrupt one
without its file name. With ``on_error="raise"`` (default) a shard whose size differs from
the schema fails before reading starts, and a shard that yields fewer records than
recorded fails when its end is reached; both errors name the file. With
``on_error="skip"`` the rest of a damaged shard is skipped, a warning names the file and
the number of records lost, and a ``ReadReport`` (if given) counts them.

Example::

    for batch in read_tfrecords("/tmp/ml100k", batch_size=1024):
        batch["user_id"]  # a [<=1024] tensor
"""

import os
import sys
import threading
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrecs.core.errors import InputError, StorageError
from tfrecs.pipelines.tfrecord_schema import COMPRESSIONS, TF_DTYPES, ColumnSchema, TFRecordSchema, load_schema

_FILE_BLOCK = 512  # records per block read from one file before re-batching


class TFRecordIntegrityError(StorageError):
    """A shard is missing, truncated or corrupt; the message names the file."""


class ReadReport:
    """Counts what ``read_tfrecords(..., on_error="skip")`` had to skip, per shard.

    Example::

        report = ReadReport()
        for batch in read_tfrecords(path, on_error="skip", report=report): ...
        report.skipped_records, report.bad_shards   # {file: (records read, records expected)}
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.bad_shards: Dict[str, tuple] = {}

    @property
    def skipped_records(self) -> int:
        return sum(expected - read for read, expected in self.bad_shards.values())

    def record(self, path: str, read: int, expected: int) -> None:
        with self._lock:
            self.bad_shards[path] = (read, expected)


def check_shards(path: str, schema: Optional[TFRecordSchema] = None) -> List[str]:
    """Problems visible without reading: shards missing or of another size than recorded.

    Returns:
        One message per bad shard (empty when all look whole). Corruption inside a shard of
        the right size is only found by reading it.
    """
    schema = schema or load_schema(path)
    problems = []
    for shard in schema.shards:
        file = os.path.join(path, shard.file)
        if not os.path.exists(file):
            problems.append(f"{file}: shard is missing ({shard.records} records expected)")
        elif os.path.getsize(file) != shard.bytes:
            problems.append(
                f"{file}: shard is {os.path.getsize(file)} bytes, the schema records {shard.bytes} "
                "(truncated or rewritten)"
            )
    return problems


def _checked_blocks(compression: str, skip: bool, report: Optional[ReadReport]):
    """Per-file dataset of record blocks; the empty end-of-file block triggers the count check."""

    def per_file(path, expected):
        blocks = (
            tf.data.TFRecordDataset(path, compression_type=compression, buffer_size=1 << 20)
            .ignore_errors()
            .batch(_FILE_BLOCK)
        )
        end = tf.data.Dataset.from_tensors(tf.zeros([0], tf.string))

        def step(count, block):
            at_end = tf.equal(tf.size(block), 0)
            whole = tf.logical_or(tf.logical_not(at_end), tf.equal(count, expected))
            if skip:

                def warn():
                    tf.print(
                        "tfrecs: WARNING: corrupt or truncated TFRecord shard",
                        path,
                        ": read",
                        count,
                        "of",
                        expected,
                        "records; skipped the rest",
                        output_stream=sys.stderr,
                    )
                    if report is not None:
                        tf.py_function(
                            lambda p, c, e: report.record(p.numpy().decode(), int(c), int(e)),
                            [path, count, expected],
                            [],
                        )
                    return tf.constant(True)

                checked = tf.cond(whole, lambda: tf.constant(True), warn)
            else:
                checked = tf.debugging.Assert(
                    whole,
                    [
                        "tfrecs: corrupt or truncated TFRecord shard",
                        path,
                        "read",
                        count,
                        "of",
                        expected,
                        "records (it ends early or has a bad record); pass on_error='skip' to skip damaged records",
                    ],
                    summarize=3,
                )
            with tf.control_dependencies([checked]):
                return count + tf.size(block, out_type=tf.int64), tf.identity(block)

        return blocks.concatenate(end).scan(tf.constant(0, tf.int64), step)

    return per_file


def read_tfrecords(
    path: str,
    batch_size: int = 4096,
    columns: Optional[Sequence[str]] = None,
    sequences: str = "ragged",
    deterministic: bool = False,
    shuffle_files: bool = False,
    shuffle_buffer: int = 0,
    seed: Optional[int] = None,
    on_error: str = "raise",
    report: Optional[ReadReport] = None,
    drop_remainder: bool = False,
    cycle_length: Optional[int] = None,
    num_epochs: Optional[int] = 1,
) -> tf.data.Dataset:
    """Batches of ``{column: tensor}`` read from a ``write_tfrecords`` directory.

    Args:
        path: the directory (holding ``schema.json``).
        batch_size: records per batch.
        columns: columns to parse (default: all).
        sequences: ``"ragged"`` (``tf.RaggedTensor``) or ``"padded"`` (dense, right-padded
            with the column's padding value to the column's ``length`` if it has one, else to
            the batch's longest row) for ragged columns.
        deterministic: the same order on every run (parallel reads keep a fixed interleave).
        shuffle_files: shuffle the shard order each epoch (needs ``seed`` if deterministic).
        shuffle_buffer: shuffle records within a buffer of this size (0: no record shuffle;
            costs one extra per-record stage).
        seed: seed of the shuffles.
        on_error: ``"raise"`` (fail naming the damaged shard) or ``"skip"`` (skip the rest of
            it, warn, count in ``report``).
        report: a ``ReadReport`` collecting skipped counts with ``on_error="skip"``.
        drop_remainder: drop the last partial batch.
        cycle_length: files read at once (default: min(shards, 8)).
        num_epochs: passes over the data (None: repeat forever).

    Returns:
        A ``tf.data.Dataset`` of dict batches.

    Raises:
        FileNotFoundError: no schema in ``path``.
        TFRecordIntegrityError: with ``on_error="raise"``, a shard missing or of the wrong size.
        InputError: bad arguments, an empty directory, or ``drop_remainder`` with a
            ``batch_size`` larger than the records (one pass would yield no batch).
        KeyError: an unknown column.

    Example::

        ds = read_tfrecords("/tmp/ctr", batch_size=4096, deterministic=True)
    """
    if on_error not in ("raise", "skip"):
        raise InputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if sequences not in ("ragged", "padded"):
        raise InputError(f"sequences must be 'ragged' or 'padded', got {sequences!r}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if deterministic and (shuffle_files or shuffle_buffer) and seed is None:
        raise InputError("deterministic=True with shuffling needs a seed")
    schema = load_schema(path)
    if schema.num_records == 0:
        raise InputError(f"{path}: the TFRecord directory holds no records")
    if drop_remainder and num_epochs == 1 and batch_size > schema.num_records:
        raise InputError(
            f"{path}: batch_size={batch_size} with drop_remainder=True is larger than the "
            f"{schema.num_records} records there, so no batch would be read; lower the batch size "
            "or pass drop_remainder=False"
        )
    selected = [schema.column(name) for name in columns] if columns is not None else list(schema.columns)
    problems = check_shards(path, schema)
    if problems and on_error == "raise":
        raise TFRecordIntegrityError("; ".join(problems))
    for problem in problems:
        print(f"tfrecs: WARNING: {problem}; reading what is there", file=sys.stderr)
    shards = [s for s in schema.shards if os.path.exists(os.path.join(path, s.file))]
    if report is not None:
        for shard in schema.shards:
            if shard not in shards:
                report.record(os.path.join(path, shard.file), 0, shard.records)

    files = tf.data.Dataset.from_tensor_slices(
        ([os.path.join(path, s.file) for s in shards], np.array([s.records for s in shards], dtype=np.int64))
    )
    if shuffle_files:
        files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
    if num_epochs != 1:
        files = files.repeat(num_epochs)
    blocks = files.interleave(
        _checked_blocks(COMPRESSIONS[schema.compression or ""], on_error == "skip", report),
        cycle_length=cycle_length or min(len(shards), 8),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if shuffle_buffer:
        records = blocks.unbatch().shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        batches = records.batch(batch_size, drop_remainder=drop_remainder)
    else:
        batches = blocks.rebatch(batch_size, drop_remainder=drop_remainder)
    parse = make_parser(selected, sequences)
    return batches.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic).prefetch(
        tf.data.AUTOTUNE
    )


def make_parser(
    columns: Sequence[ColumnSchema], sequences: str = "ragged"
) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
    """``[n]`` serialised examples -> ``{column: tensor}`` (one ``parse_example`` call)."""
    features = {c.name: c.parse_feature() for c in columns}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, features)
        if sequences == "padded":
            for c in columns:
                if c.shape == "ragged":
                    default = tf.constant(c.padding, TF_DTYPES[c.dtype])
                    parsed[c.name] = parsed[c.name].to_tensor(
                        default_value=default, shape=[None, c.length] if c.length else None
                    )
        return parsed

    return parse
