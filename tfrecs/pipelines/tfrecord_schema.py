"""The schema of a TFRecord directory: column layouts, shards, the FeatureSpec (``schema.json``).

Column layouts (``ColumnSchema.shape``): ``scalar`` (one value per record), ``fixed``
(a list of ``length`` values, e.g. a padded sequence) and ``ragged`` (a list of any
length, e.g. genres or a history). Dtypes: ``int64``, ``float32``, ``string``.

Example::

    schema = load_schema("/tmp/ml100k")
    schema.num_records, [c.name for c in schema.columns]
"""

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional, Union

import numpy as np
import tensorflow as tf

from tfrecs.data.feature_spec import SEQUENCE_PADDING, FeatureSpec, FeatureSpecError

SCHEMA_FILE = "schema.json"
FORMAT = "tfrecs-tfrecords"
FORMAT_VERSION = 1
DTYPES = ("int64", "float32", "string")
SHAPES = ("scalar", "fixed", "ragged")
COMPRESSIONS = {None: "", "": "", "NONE": "", "GZIP": "GZIP", "ZLIB": "ZLIB"}
TF_DTYPES = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}


@dataclass
class ColumnSchema:
    """How one column is stored: dtype (``int64``/``float32``/``string``) and shape
    (``scalar``, ``fixed`` with ``length`` values, or ``ragged``)."""

    name: str
    dtype: str
    shape: str = "scalar"
    length: Optional[int] = None
    padding: Union[int, float, str, None] = None

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"column {self.name!r}: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.shape not in SHAPES:
            raise ValueError(f"column {self.name!r}: shape must be one of {SHAPES}, got {self.shape!r}")
        if self.shape == "fixed" and (self.length is None or self.length < 1):
            raise ValueError(f"column {self.name!r}: a fixed-length column needs length >= 1, got {self.length}")
        if self.padding is None:  # raw-id padding of the FeatureSpec: "" / -1 (item 0 is a real id); 0.0 for floats
            self.padding = {"string": "", "int64": -1}.get(self.dtype, 0.0)

    def parse_feature(self):
        """The ``tf.io`` parsing config of this column."""
        dtype = TF_DTYPES[self.dtype]
        if self.shape == "ragged":
            return tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64)
        return tf.io.FixedLenFeature([] if self.shape == "scalar" else [self.length], dtype)


@dataclass
class ShardInfo:
    file: str
    records: int
    bytes: int


@dataclass
class TFRecordSchema:
    """What a TFRecord directory holds: columns, shards with record counts and sizes,
    compression, and the ``FeatureSpec`` the data was written with (if any).

    Example::

        schema = load_schema("/tmp/ml100k")
        schema.num_records, [c.name for c in schema.columns]
    """

    columns: List[ColumnSchema]
    compression: Optional[str] = None
    shards: List[ShardInfo] = field(default_factory=list)
    feature_spec: Optional[FeatureSpec] = None
    metadata: Dict[str, object] = field(default_factory=dict)

    @property
    def num_records(self) -> int:
        return sum(s.records for s in self.shards)

    @property
    def num_bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    def column(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"column {name!r} is not in the schema (has {[c.name for c in self.columns]})")

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "compression": self.compression,
                "num_records": self.num_records,
                "columns": [asdict(c) for c in self.columns],
                "shards": [asdict(s) for s in self.shards],
                "feature_spec": json.loads(self.feature_spec.to_json()) if self.feature_spec is not None else None,
                "metadata": self.metadata,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> "TFRecordSchema":
        """Parses ``to_json`` output; raises ``ValueError`` naming ``source`` on bad content."""
        try:
            payload = json.loads(text)
            if payload.get("format") != FORMAT or payload.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"{source}: not a {FORMAT} v{FORMAT_VERSION} schema "
                    f"(format={payload.get('format')!r}, version={payload.get('format_version')!r})"
                )
            spec = payload.get("feature_spec")
            return cls(
                columns=[ColumnSchema(**c) for c in payload["columns"]],
                compression=payload.get("compression"),
                shards=[ShardInfo(**s) for s in payload["shards"]],
                feature_spec=FeatureSpec.from_json(json.dumps(spec), source) if spec else None,
                metadata=payload.get("metadata") or {},
            )
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{source}: not a {FORMAT} schema file ({error!r})") from None


def load_schema(path: str) -> TFRecordSchema:
    """Reads ``<path>/schema.json`` (``path`` may also be the schema file itself).

    Raises:
        FileNotFoundError: no schema file there (names the path).
        ValueError: the file is not a tfrecs TFRecord schema.
    """
    schema_path = path if path.endswith(".json") else os.path.join(path, SCHEMA_FILE)
    if not os.path.exists(schema_path):
        raise FileNotFoundError(f"{schema_path}: no TFRecord schema here; write the directory with write_tfrecords")
    with open(schema_path, encoding="utf-8") as handle:
        return TFRecordSchema.from_json(handle.read(), source=schema_path)


def is_list_valued(values: np.ndarray) -> bool:
    return values.dtype == object and len(values) > 0 and isinstance(values[0], (list, tuple, np.ndarray))


def dtype_of(name: str, values) -> str:
    if isinstance(values, tf.RaggedTensor):
        values = values.flat_values.numpy()
    values = np.asarray(values)
    if is_list_valued(values):
        flat = [v for row in values for v in row]
        values = np.asarray(flat) if flat else np.zeros(0, dtype=np.int64)
    kind = values.dtype.kind
    if kind in "iub":
        return "int64"
    if kind == "f":
        return "float32"
    if kind in "USO":
        return "string"
    raise FeatureSpecError(f"column {name!r}: cannot store dtype {values.dtype} in a TFRecord")


def infer_column(
    name: str,
    values,
    feature_kind: Optional[str] = None,
    feature_dtype: Optional[str] = None,
    max_length: Optional[int] = None,
) -> ColumnSchema:
    """The storage of one column from its values (1-D: scalar, 2-D: fixed, lists: ragged)."""
    dtype = dtype_of(name, values)
    if feature_kind in ("categorical", "sequence") and dtype != feature_dtype:
        raise FeatureSpecError(f"feature {name!r}: the spec says {feature_dtype} ids, the data holds {dtype} values")
    if feature_kind == "numeric" and dtype == "string":
        raise FeatureSpecError(f"feature {name!r}: the spec says numeric, the data holds strings")
    if feature_kind == "numeric":
        dtype = "float32"
    if isinstance(values, tf.RaggedTensor) or is_list_valued(np.asarray(values)):
        shape, length = "ragged", max_length
    elif np.ndim(values) == 2:
        shape, length = "fixed", int(np.shape(values)[1])
    elif np.ndim(values) == 1:
        shape, length = "scalar", None
    else:
        raise FeatureSpecError(f"column {name!r}: values must be 1-D, 2-D or list-valued, got shape {np.shape(values)}")
    if feature_kind == "sequence" and shape == "scalar":
        raise FeatureSpecError(f"feature {name!r}: the spec says sequence, the data holds one value per row")
    if feature_kind in ("categorical", "numeric", "text") and shape != "scalar":
        raise FeatureSpecError(
            f"feature {name!r}: the spec says {feature_kind} (one value per row), the data holds lists"
        )
    padding = SEQUENCE_PADDING.get(dtype, 0.0) if dtype != "float32" else 0.0
    return ColumnSchema(name, dtype, shape, length, padding)


def infer_schema(columns: Mapping[str, object], spec: Optional[FeatureSpec] = None) -> List[ColumnSchema]:
    """Column schemas for ``columns``; features of ``spec`` must be present and agree with it.

    Raises:
        FeatureSpecError: a spec feature is missing from the data or has another dtype or shape.
    """
    if spec is not None:
        for feature in spec:
            if feature.name not in columns:
                raise FeatureSpecError(
                    f"feature {feature.name!r} is missing from the data (columns: {sorted(columns)})"
                )
    result = []
    for name, values in columns.items():
        feature = spec.features.get(name) if spec is not None else None
        result.append(
            infer_column(
                name,
                values,
                feature.kind if feature else None,
                feature.dtype if feature else None,
                feature.max_length if feature else None,
            )
        )
    return result
