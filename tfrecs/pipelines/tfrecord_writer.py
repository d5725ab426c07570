"""Writes columns to sharded TFRecord files with ``schema.json`` beside them, atomically.

Serialisation is vectorised (``example_encoder``): whole batches of ``tf.train.Example``
records are assembled with NumPy array operations, with no per-record protobuf objects.

Atomic output (``staged_output``): everything is written into a hidden directory next to
the target, ``.<name>.partial-<pid>-<random>``, and renamed to ``<name>`` only once every
shard and ``schema.json`` are complete. A write that fails (bad data, full disk) removes
its hidden directory; one that is killed leaves it behind, hidden, and the next write to
the same target removes it and says so on stderr ("starting clean"). So a directory named
like the target always holds a complete output. Replacing an existing output
(``overwrite=True``) moves the old one aside (``.<name>.old-<pid>-<random>``), renames the
new one into place and then deletes the old one.

Example::

    write_tfrecords(synthetic_ctr(10_000, 100), "/tmp/ctr", spec=criteo_feature_spec())
"""

import contextlib
import os
import re
import shutil
import sys
import uuid
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Union

import numpy as np
import tensorflow as tf

from tfrecs.core.errors import InputError, StorageError, TfrecsError
from tfrecs.data.feature_spec import FeatureSpec, FeatureSpecError
from tfrecs.pipelines.example_encoder import encode_examples
from tfrecs.pipelines.tfrecord_schema import (
    COMPRESSIONS,
    SCHEMA_FILE,
    TF_DTYPES,
    ColumnSchema,
    ShardInfo,
    TFRecordSchema,
    dtype_of,
    infer_schema,
    is_list_valued,
)

Data = Union[Mapping[str, object], Iterable[Mapping[str, object]]]
_STAGING = re.compile(r"^\.(?P<name>.+)\.(?:partial|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


def notice(message: str) -> None:
    """Prints one ``tfrecs: <message>`` line on stderr (what a writer did on its own)."""
    print(f"tfrecs: {message}", file=sys.stderr, flush=True)


def storage_error(path: str, error: BaseException, doing: str = "write") -> StorageError:
    """One-line ``StorageError`` naming ``path`` for an ``OSError`` or a TensorFlow I/O error.

    Example::

        except OSError as error:
            raise storage_error("/data/out", error) from None
    """
    reason = getattr(error, "strerror", None) or getattr(error, "message", None) or str(error) or type(error).__name__
    reason = str(reason).strip().splitlines()[0] if str(reason).strip() else type(error).__name__
    hint = " (disk full or a file-size limit?)" if "too large" in reason.lower() or "space" in reason.lower() else ""
    return StorageError(f"{path}: cannot {doing}: {reason}{hint}")


def is_storage_failure(error: BaseException) -> bool:
    """An ``OSError`` or a TensorFlow error raised by file I/O, not already a tfrecs error."""
    if isinstance(error, TfrecsError):
        return False
    return isinstance(error, OSError) or isinstance(
        error,
        (
            tf.errors.OutOfRangeError,
            tf.errors.ResourceExhaustedError,
            tf.errors.PermissionDeniedError,
            tf.errors.UnknownError,
            tf.errors.FailedPreconditionError,
            tf.errors.NotFoundError,
            tf.errors.InternalError,
        ),
    )


def pid_alive(pid: int) -> bool:
    """Whether a process of that id exists (a writer named in a staging directory)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_interrupted(target: str) -> List[str]:
    """Removes the hidden staging directories of ``target`` whose writer process is gone.

    Returns:
        The paths removed (each was left by a killed write).
    """
    parent, name = os.path.split(os.path.abspath(target))
    removed = []
    if not os.path.isdir(parent):
        return removed
    for entry in sorted(os.listdir(parent)):
        match = _STAGING.match(entry)
        if match and match.group("name") == name and not pid_alive(int(match.group("pid"))):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
            removed.append(os.path.join(parent, entry))
    return removed


def is_tfrecord_output(path: str) -> bool:
    """Whether ``path`` holds a ``schema.json``, or only directories that each do (a split)."""
    if os.path.exists(os.path.join(path, SCHEMA_FILE)):
        return True
    entries = [e for e in os.listdir(path) if not e.startswith(".")]
    return bool(entries) and all(os.path.exists(os.path.join(path, e, SCHEMA_FILE)) for e in entries)


def check_target(target: str, overwrite: bool, flag: str = "overwrite=True") -> None:
    """Raises unless ``target`` may be written: absent, an empty directory, or (with
    ``overwrite``) a previous TFRecord output.

    Raises:
        InputError: it holds an output and ``overwrite`` is off (the message names ``flag``),
            or it holds other files.
        StorageError: it exists and is not a directory.
    """
    if not os.path.lexists(target):
        return
    if not os.path.isdir(target):
        raise StorageError(f"{target}: exists and is not a directory; choose another output path")
    if not os.listdir(target):
        return
    if not is_tfrecord_output(target):
        raise InputError(
            f"{target}: holds files that are not a tfrecs TFRecord output; choose an empty or new "
            "directory (nothing was deleted)"
        )
    if not overwrite:
        raise InputError(f"{target} already holds TFRecords ({SCHEMA_FILE}); pass {flag} to replace them")


@contextlib.contextmanager
def staged_output(target: str, overwrite: bool = False, flag: str = "overwrite=True") -> Iterator[str]:
    """Yields a hidden staging directory that becomes ``target`` when the block completes.

    On an exception the staging directory is removed (an ``OSError`` or TensorFlow I/O
    error becomes a one-line ``StorageError`` naming ``target``). Staging directories of
    killed writers of the same target are removed first, with a notice on stderr.

    Args:
        target: the output directory.
        overwrite: replace a previous output in ``target``.
        flag: how the caller names ``overwrite`` in the refusal (``--overwrite`` in scripts).

    Raises:
        InputError, StorageError: see ``check_target``; the target cannot be written.

    Example::

        with staged_output("/tmp/out", overwrite=True) as staging:
            write_files_into(staging)
        # /tmp/out now holds them; a failure leaves no /tmp/out
    """
    check_target(target, overwrite, flag)
    parent, name = os.path.split(os.path.abspath(target))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise storage_error(parent, error, "create the output's parent directory") from None
    for path in remove_interrupted(target):
        notice(f"removed {path}, the incomplete output of an interrupted write; starting clean")
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = os.path.join(parent, f".{name}.partial-{tag}")
    try:
        os.mkdir(staging)
    except OSError as error:
        raise storage_error(target, error, "create a staging directory next to it") from None
    try:
        yield staging
        old = os.path.join(parent, f".{name}.old-{tag}")
        replacing = os.path.isdir(target) and bool(os.listdir(target))
        if replacing:
            os.rename(target, old)
        os.rename(staging, target)
        if replacing:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if is_storage_failure(error):
            raise storage_error(target, error) from None
        raise


def column_values(column: ColumnSchema, values):
    """A column chunk as the encoder takes it (numpy, ``tf.RaggedTensor`` for ragged columns),
    checked against ``column``.

    Raises:
        FeatureSpecError: the values' shape or dtype disagrees with the schema (names the column).
    """
    if column.shape == "ragged":
        if isinstance(values, tf.RaggedTensor):
            return values if column.dtype == "string" else tf.cast(values, TF_DTYPES[column.dtype])
        values = np.asarray(values)
        if values.dtype != object:
            raise FeatureSpecError(f"column {column.name!r}: the schema says ragged lists, got a {values.dtype} array")
        lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
        flat = [v for row in values for v in row]
        flat_np = np.asarray(flat) if flat else np.zeros(0, dtype=np.int64 if column.dtype != "string" else object)
        if flat and dtype_of(column.name, flat_np) != column.dtype:
            raise FeatureSpecError(
                f"column {column.name!r}: the schema says {column.dtype}, got {flat_np.dtype} values"
            )
        flat_t = tf.constant(
            flat_np.astype(object) if column.dtype == "string" else flat_np.astype(column.dtype),
            TF_DTYPES[column.dtype],
        )
        return tf.RaggedTensor.from_row_lengths(flat_t, lengths)
    values = np.asarray(values)
    if is_list_valued(values) or values.ndim != (1 if column.shape == "scalar" else 2):
        raise FeatureSpecError(
            f"column {column.name!r}: the schema says {column.shape}, got values of shape {values.shape}"
        )
    if column.shape == "fixed" and values.shape[1] != column.length:
        raise FeatureSpecError(
            f"column {column.name!r}: the schema says {column.length} values per row, got {values.shape[1]}"
        )
    if (
        len(values)
        and dtype_of(column.name, values) != column.dtype
        and not (column.dtype == "float32" and values.dtype.kind in "iub")
    ):
        raise FeatureSpecError(f"column {column.name!r}: the schema says {column.dtype}, got dtype {values.dtype}")
    return values if column.dtype == "string" else values.astype(column.dtype, copy=False)


def _num_rows(columns: Mapping[str, object]) -> int:
    lengths = {name: (int(v.nrows()) if isinstance(v, tf.RaggedTensor) else len(v)) for name, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"columns have different lengths: {lengths}")
    return next(iter(lengths.values())) if lengths else 0


def shard_file_name(index: int, num_shards: int, compression: Optional[str]) -> str:
    suffix = ".tfrecord.gz" if compression == "GZIP" else (".tfrecord.zz" if compression == "ZLIB" else ".tfrecord")
    return f"part-{index:05d}-of-{num_shards:05d}{suffix}"


def write_tfrecords(
    data: Data,
    output_dir: str,
    spec: Optional[FeatureSpec] = None,
    num_shards: int = 8,
    compression: Optional[str] = None,
    batch_size: int = 8192,
    overwrite: bool = False,
    progress: Optional[Callable[[int], None]] = None,
    metadata: Optional[Dict[str, object]] = None,
    overwrite_flag: str = "overwrite=True",
) -> TFRecordSchema:
    """Writes columns (one dict, or an iterable of dict chunks) to sharded TFRecord files, atomically.

    Each chunk is cut into ``num_shards`` contiguous parts and part ``k`` is appended to
    shard ``k``, so shards stay balanced; for a single in-memory dict, reading the shards in
    order (``read_tfrecords(..., deterministic=True, cycle_length=1)``) gives the rows back
    in their original order. Every column is written; ``spec`` features must be among them
    and agree with the spec's kind and dtype. Shards and ``schema.json`` are written into a
    hidden staging directory renamed to ``output_dir`` when complete (module doc): a failed
    or killed write never leaves ``output_dir`` looking complete.

    Args:
        data: ``{name: column}`` (numpy 1-D: scalar, 2-D: fixed-length list, object array of
            lists or ``tf.RaggedTensor``: ragged) or an iterable of such chunks.
        output_dir: directory to create; must be absent or empty, or hold a previous output
            and ``overwrite`` be set.
        spec: the ``FeatureSpec`` to check the data against and save beside the shards.
        num_shards: number of files.
        compression: ``None``, ``"GZIP"`` or ``"ZLIB"``.
        batch_size: rows serialised at once.
        overwrite: replace a previous output in ``output_dir``.
        progress: called with the number of records after each written batch.
        metadata: JSON-able facts stored in the schema (e.g. the data set name).
        overwrite_flag: how the refusal to overwrite names ``overwrite`` (scripts: ``--overwrite``).

    Returns:
        The ``TFRecordSchema`` written (with shard record counts and byte sizes).

    Raises:
        InputError: empty input, bad arguments, an existing output without ``overwrite``, or a
            directory holding other files.
        FeatureSpecError: a feature is missing or its dtype / shape disagrees with the schema.
        StorageError: the output cannot be written (no permission, disk full); names the path
            and leaves nothing behind.

    Example::

        write_tfrecords(synthetic_ctr(10_000, 100), "/tmp/ctr", spec=criteo_feature_spec())
    """
    if num_shards < 1 or batch_size < 1:
        raise InputError(f"num_shards and batch_size must be >= 1, got {num_shards} and {batch_size}")
    compression_key = compression.upper() if isinstance(compression, str) else compression
    if compression_key not in COMPRESSIONS:
        raise InputError(f"compression must be None, 'GZIP' or 'ZLIB', got {compression!r}")
    compression = COMPRESSIONS[compression_key] or None
    chunks = iter([data]) if isinstance(data, Mapping) else iter(data)
    with staged_output(output_dir, overwrite, overwrite_flag) as staging:
        columns, names, counts = _write_shards(chunks, staging, spec, num_shards, compression, batch_size, progress)
        shards = [
            ShardInfo(name, count, os.path.getsize(os.path.join(staging, name))) for name, count in zip(names, counts)
        ]
        schema = TFRecordSchema(columns, compression, shards, spec, dict(metadata or {}))
        with open(os.path.join(staging, SCHEMA_FILE), "w", encoding="utf-8") as handle:
            handle.write(schema.to_json())
    return schema


def _write_shards(chunks, directory, spec, num_shards, compression, batch_size, progress):
    """Writes every chunk into ``num_shards`` shard files of ``directory``; returns
    ``(columns, shard file names, records per shard)``."""
    columns: Optional[List[ColumnSchema]] = None
    names = [shard_file_name(k, num_shards, compression) for k in range(num_shards)]
    counts = [0] * num_shards
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    writers = [tf.io.TFRecordWriter(os.path.join(directory, name), options) for name in names]
    try:
        for chunk in chunks:
            if columns is None:
                columns = infer_schema(chunk, spec)
            else:
                missing = [c.name for c in columns if c.name not in chunk]
                if missing:
                    raise FeatureSpecError(
                        f"column {missing[0]!r} is missing from a later chunk (columns: {sorted(chunk)})"
                    )
            n = _num_rows(chunk)
            bounds = np.linspace(0, n, num_shards + 1).astype(np.int64)
            for k in range(num_shards):
                for start in range(int(bounds[k]), int(bounds[k + 1]), batch_size):
                    stop = min(start + batch_size, int(bounds[k + 1]))
                    batch = {c.name: column_values(c, chunk[c.name][start:stop]) for c in columns}
                    for record in encode_examples(batch, columns):
                        writers[k].write(record)
                    counts[k] += stop - start
                    if progress is not None:
                        progress(stop - start)
    except BaseException:
        for writer in writers:
            with contextlib.suppress(Exception):
                writer.close()
        raise
    for writer in writers:
        writer.close()  # a full disk often shows only here, when the buffers are flushed
    if columns is None or sum(counts) == 0:
        raise InputError("empty input: there are no records to write")
    return columns, names, counts
