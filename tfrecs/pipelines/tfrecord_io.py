"""Sharded TFRecord files with their schema beside them: write, check, read.

Layout of an output directory::

    schema.json                      columns, shards (file, records, bytes), FeatureSpec
    part-00000-of-00008.tfrecord     one ``tf.train.Example`` per record
    ...                              (``.tfrecord.gz`` with GZIP compression)

Column layouts (``ColumnSchema.shape``): ``scalar`` (one value per record), ``fixed``
(a list of ``length`` values, e.g. a padded sequence) and ``ragged`` (a list of any
length, e.g. genres or a history). Dtypes: ``int64``, ``float32``, ``string``.

Modules: ``tfrecord_schema`` (the schema file), ``tfrecord_writer`` (serialises whole
batches with NumPy array operations in ``example_encoder``, no per-record protobuf objects) and
``tfrecord_reader`` (batch-then-parse: files interleaved in parallel, each read in blocks
checked against the record count the schema holds, blocks re-batched to ``batch_size``
and parsed with one ``tf.io.parse_example`` per batch, ``AUTOTUNE`` parallelism and
prefetch). This module gathers their public names.

Writes are atomic: shards and ``schema.json`` go to a hidden staging directory next to the
target (``.<name>.partial-<pid>-<random>``), renamed into place only when complete; a failed
write removes it, a killed one leaves it hidden and the next write removes it and says so
(``staged_output``; docs/failures.md).

Damage is never silent. TensorFlow itself stops at a truncated record without an error
and reports a corrupt one without its file name; so every shard is counted while it is
read. With ``on_error="raise"`` (default) a shard whose size differs from the schema
fails before reading starts, and a shard that yields fewer records than recorded fails
when its end is reached; both errors name the file. With ``on_error="skip"`` the rest of
a damaged shard is skipped, a warning names the file and the number of records lost, and
a ``ReadReport`` (if given) counts them.

Example::

    schema = write_tfrecords(columns, "/tmp/ml100k", spec=spec, num_shards=4, compression="GZIP")
    for batch in read_tfrecords("/tmp/ml100k", batch_size=1024):
        batch["user_id"]  # a [<=1024] tensor
"""

from tfrecs.pipelines.tfrecord_reader import (
    ReadReport,
    TFRecordIntegrityError,
    check_shards,  # noqa: F401
    make_parser,
    read_tfrecords,
)
from tfrecs.pipelines.tfrecord_schema import (
    SCHEMA_FILE,
    ColumnSchema,
    ShardInfo,
    TFRecordSchema,  # noqa: F401
    infer_column,
    infer_schema,
    load_schema,
)
from tfrecs.pipelines.tfrecord_writer import shard_file_name, staged_output, write_tfrecords  # noqa: F401

__all__ = [
    "ColumnSchema",
    "ReadReport",
    "SCHEMA_FILE",
    "ShardInfo",
    "TFRecordIntegrityError",
    "TFRecordSchema",
    "check_shards",
    "infer_column",
    "infer_schema",
    "load_schema",
    "make_parser",
    "read_tfrecords",
    "shard_file_name",
    "staged_output",
    "write_tfrecords",
]
