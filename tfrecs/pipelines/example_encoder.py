"""Vectorised ``tf.train.Example`` serialisation in NumPy: a batch of columns -> records.

The protobuf wire format of an Example is simple enough to build for a whole batch with
array operations: every level (value list, ``Feature``, map entry, ``Features``,
``Example``) is a per-row byte segment, and rows of several segments are concatenated with
one gather per segment. No per-record Python, no protobuf objects.

Wire layout (field tags in hex)::

    Example   = 0a len(Features) Features
    Features  = for each column: 0a len(entry) entry
    entry     = 0a len(key) key 12 len(Feature) Feature
    Feature   = {0a bytes_list | 12 float_list | 1a int64_list} len(list) list
    list      = int64: 0a len packed-varints;  float: 0a len float32-LE;  bytes: (0a len value)*

Example::

    records = encode_examples({"x": np.arange(3)}, [ColumnSchema("x", "int64")])  # 3 bytes objects
"""

from typing import List, Mapping, Sequence, Tuple

import numpy as np

from tfrecs.pipelines.tfrecord_schema import ColumnSchema

Block = Tuple[np.ndarray, np.ndarray]  # ([rows, width] uint8, [rows] byte counts): row r is block[r, :count[r]]
_FEATURE_TAG = {"string": 0x0A, "float32": 0x12, "int64": 0x1A}
_VARINT_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)


def varints(values: np.ndarray) -> Block:
    """Base-128 varints of ``values``, one row each (negatives as 10-byte two's complement)."""
    values = np.asarray(values)
    if values.dtype != np.uint64:
        values = values.astype(np.int64).view(np.uint64)
    if len(values) == 0 or values.max() < 128:
        return values.astype(np.uint8)[:, None], np.ones(len(values), np.int64)
    sizes = 1 + np.searchsorted(_VARINT_LIMITS, values, side="right").astype(np.int64)
    shifts = np.arange(0, 7 * int(sizes.max()), 7, dtype=np.uint64)
    groups = ((values[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    groups[np.arange(len(shifts))[None, :] < sizes[:, None] - 1] |= 0x80
    return groups, sizes


def constant(data: bytes, rows: int) -> Block:
    return (np.broadcast_to(np.frombuffer(data, np.uint8), (rows, len(data))), np.full(rows, len(data), dtype=np.int64))


def join(blocks: Sequence[Block]) -> Tuple[np.ndarray, np.ndarray]:
    """Row-wise concatenation of blocks as (flat bytes of all rows in order, per-row sizes)."""
    matrix = np.concatenate([b[0] for b in blocks], axis=1)
    used = np.concatenate([np.arange(b[0].shape[1])[None, :] < b[1][:, None] for b in blocks], axis=1)
    return matrix[used], np.sum([b[1] for b in blocks], axis=0)


def to_block(flat: np.ndarray, sizes: np.ndarray) -> Block:
    """Flat bytes with per-row sizes (rows in order) as a block."""
    width = int(sizes.max()) if len(sizes) else 0
    if width == 0:
        return np.zeros((len(sizes), 0), np.uint8), sizes
    starts = np.cumsum(sizes) - sizes
    index = np.minimum(starts[:, None] + np.arange(width)[None, :], max(len(flat) - 1, 0))
    return (flat[index] if len(flat) else np.zeros((len(sizes), width), np.uint8)), sizes


def _grouped(per_value: Tuple[np.ndarray, np.ndarray], row_ids: np.ndarray, rows: int) -> Block:
    """Per-value bytes (values in row order) merged into one block row per record."""
    flat, sizes = per_value
    return to_block(flat, np.bincount(row_ids, weights=sizes, minlength=rows).astype(np.int64))


def _string_values(flat) -> Block:
    """UTF-8 bytes of each string value, one row each."""
    flat = np.asarray(flat)
    if flat.dtype.kind == "O":  # bytes (tf string tensors) or str objects
        flat = np.array(flat.tolist()) if len(flat) else flat.astype("S1")
    if flat.dtype.kind != "S":
        flat = np.char.encode(flat.astype(str), "utf-8") if len(flat) else flat.astype("S1")
    width = max(flat.dtype.itemsize, 1)
    matrix = np.frombuffer(flat.tobytes(), dtype=np.uint8).reshape(len(flat), flat.dtype.itemsize)
    if matrix.shape[1] == 0:
        matrix = np.zeros((len(flat), width), np.uint8)
    return matrix, np.char.str_len(flat).astype(np.int64) if len(flat) else np.zeros(0, np.int64)


def _list_blocks(column: ColumnSchema, flat: np.ndarray, row_ids: np.ndarray, rows: int, one_per_row: bool):
    """Blocks of each row's serialised ``*List`` message."""
    if column.dtype == "string":
        values = _string_values(flat)
        pieces = [constant(b"\x0a", len(values[1])), varints(values[1]), values]
        return pieces if one_per_row else [_grouped(join(pieces), row_ids, rows)]
    if column.dtype == "float32":
        payload = np.ascontiguousarray(flat, dtype="<f4").view(np.uint8).reshape(-1, 4), np.full(len(flat), 4, np.int64)
    else:
        payload = varints(flat)
    if not one_per_row:
        payload = _grouped(join([payload]), row_ids, rows)
    size_varint = varints(payload[1])
    present = (payload[1] > 0).astype(np.int64)  # an empty list has no packed field at all
    return [(np.full((rows, 1), 0x0A, np.uint8), present), (size_varint[0], size_varint[1] * present), payload]


def _flat_values(column: ColumnSchema, values) -> Tuple[np.ndarray, np.ndarray, int]:
    """(flat values in row order, row id of each value, rows) of a column chunk."""
    if column.shape == "ragged":
        flat = values.flat_values.numpy()
        lengths = values.row_lengths().numpy()
    else:
        flat = np.asarray(values).reshape(len(values), -1)
        lengths = np.full(len(flat), flat.shape[1], dtype=np.int64)
        flat = flat.reshape(-1)
    return flat, np.repeat(np.arange(len(lengths)), lengths), len(lengths)


def encode_examples(batch: Mapping[str, object], columns: List[ColumnSchema]) -> List[bytes]:
    """Serialised ``tf.train.Example`` of each row of ``batch``.

    Every piece of every record is laid out as a ``[rows, width]`` block; lengths are
    computed bottom-up and all records are assembled with one masked compress.

    Args:
        batch: ``{name: values}``: arrays for scalar / fixed columns (strings as ``str`` or
            ``bytes``), ``tf.RaggedTensor`` for ragged columns.
        columns: the schema of each column.
    """
    pieces: List[Block] = []
    features_size = 0
    rows = 0
    for column in columns:
        flat, row_ids, rows = _flat_values(column, batch[column.name])
        one_per_row = column.shape == "scalar"
        list_blocks = _list_blocks(column, flat, row_ids, rows, one_per_row)
        list_size = np.sum([b[1] for b in list_blocks], axis=0)
        list_varint = varints(list_size)
        feature_size = 1 + list_varint[1] + list_size
        key = column.name.encode("utf-8")
        if len(key) >= 128:
            raise ValueError(f"column name {column.name!r} is too long (>= 128 bytes)")
        head = bytes([0x0A, len(key)]) + key + bytes([0x12])
        feature_varint = varints(feature_size)
        entry_size = len(head) + feature_varint[1] + feature_size
        entry_varint = varints(entry_size)
        pieces += [
            constant(b"\x0a", rows),
            entry_varint,
            constant(head, rows),
            feature_varint,
            constant(bytes([_FEATURE_TAG[column.dtype]]), rows),
            list_varint,
        ] + list_blocks
        features_size = features_size + 1 + entry_varint[1] + entry_size
    data, sizes = join([constant(b"\x0a", rows), varints(features_size)] + pieces)
    ends = np.cumsum(sizes)
    blob = data.tobytes()
    return [blob[end - size : end] for end, size in zip(ends.tolist(), sizes.tolist())]
