"""Serving input signatures and example inputs, derived from a FeatureSpec and training columns.

An export's signature takes the same raw features as training: string or int64 ids for
categorical features, a padded ``[batch, max_length]`` id matrix for sequence features,
strings for text and numbers for numeric features. Where training columns are at hand
their dtypes win (ML-100K's ``age`` is int64 in the data, so it is int64 at serving too).

Example::

    specs = feature_signature(spec, ["user_id", "age"], columns=joined_columns(split.train))
    # {"user_id": TensorSpec([None], tf.string), "age": TensorSpec([None], tf.int64)}
    rows = example_features(specs, spec, num_rows=4)      # numpy inputs for warmup / tests
"""

from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrecs.data.feature_spec import SEQUENCE_PADDING, FeatureSpec

Signature = Dict[str, tf.TensorSpec]
_DEFAULT_SEQUENCE_WIDTH = 4


def _dtype_of_column(values: np.ndarray) -> Optional[tf.DType]:
    kind = values.dtype.kind
    if kind in "US":
        return tf.string
    if kind in "iu":
        return tf.int64
    if kind == "f":
        return tf.float32
    if kind == "b":
        return tf.bool
    if kind == "O" and len(values) and isinstance(values[0], (str, bytes)):
        return tf.string
    return None  # lists (sequence features) or unknown: decided by the FeatureSpec


def _list_column_spec(values: np.ndarray, name: str) -> Optional[tf.TensorSpec]:
    """``[None, None]`` spec of a column of lists (e.g. genres) that no FeatureSpec describes."""
    if values.dtype.kind != "O" or not len(values) or not isinstance(values[0], (list, tuple, np.ndarray)):
        return None
    first = next((row[0] for row in values if len(row)), "")
    return tf.TensorSpec([None, None], tf.string if isinstance(first, (str, bytes)) else tf.int64, name=name)


def _spec_from_feature_spec(spec: Optional[FeatureSpec], name: str) -> tf.TensorSpec:
    if spec is None or name not in spec:
        raise ValueError(
            f"feature {name!r} is in neither the FeatureSpec nor the training columns, so its serving "
            f"dtype is unknown; pass it explicitly, e.g. signature_overrides={{{name!r}: "
            "tf.TensorSpec([None], tf.string)}."
        )
    feature = spec[name]
    id_dtype = tf.string if feature.dtype == "string" else tf.int64
    if feature.kind == "categorical":
        return tf.TensorSpec([None], id_dtype, name=name)
    if feature.kind == "sequence":
        return tf.TensorSpec([None, feature.max_length], id_dtype, name=name)
    if feature.kind == "text":
        return tf.TensorSpec([None], tf.string, name=name)
    return tf.TensorSpec([None], tf.float32, name=name)


def feature_signature(
    spec: Optional[FeatureSpec],
    names: Sequence[str],
    columns: Optional[Mapping[str, np.ndarray]] = None,
    overrides: Optional[Mapping[str, tf.TensorSpec]] = None,
) -> Signature:
    """``name -> tf.TensorSpec`` (batch dimension first) for the raw features ``names``.

    Args:
        spec: fitted FeatureSpec (kinds, id dtypes, sequence lengths).
        names: the features the signature takes, e.g. TrainResult.artifacts["query_features"].
        columns: training columns (e.g. ``joined_columns(split.train)``); their dtypes win for
            flat columns, so serving dtypes equal training dtypes.
        overrides: explicit specs by name (e.g. a padded history ``[None, 50]`` int64).

    Returns:
        Ordered dict name -> TensorSpec named after the feature.

    Raises:
        ValueError: no names, or a feature whose dtype cannot be determined (names it).
    """
    if not names:
        raise ValueError("the serving signature needs at least one feature name; got none.")
    result: Signature = {}
    for name in names:
        if overrides and name in overrides:
            given = overrides[name]
            result[name] = tf.TensorSpec(given.shape, given.dtype, name=name)
            continue
        if columns is not None and name in columns:
            values = np.asarray(columns[name])
            dtype = _dtype_of_column(values)
            if dtype is not None:
                result[name] = tf.TensorSpec([None, *values.shape[1:]], dtype, name=name)
                continue
            if spec is None or name not in spec:
                list_spec = _list_column_spec(values, name)
                if list_spec is not None:
                    result[name] = list_spec
                    continue
        result[name] = _spec_from_feature_spec(spec, name)
    return result


def dense_column(values, tensor_spec: tf.TensorSpec, padding=None) -> np.ndarray:
    """``values`` as a numpy array of ``tensor_spec``'s dtype; lists padded to a dense matrix.

    Rows of a list column (e.g. genres tuples) are cut or right-padded with ``padding``
    (``""`` / ``0`` by default, the FeatureSpec's sequence padding) to the spec's width, or
    to the longest row when the width is unknown.
    """
    values = np.asarray(values) if not isinstance(values, np.ndarray) else values
    numpy_dtype = object if tensor_spec.dtype == tf.string else tensor_spec.dtype.as_numpy_dtype
    if tensor_spec.shape.rank == 2 and values.ndim == 1:
        if padding is None:
            padding = SEQUENCE_PADDING["string" if tensor_spec.dtype == tf.string else "int64"]
        width = tensor_spec.shape[1] or max([len(row) for row in values] + [1])
        dense = np.full((len(values), width), padding, dtype=numpy_dtype)
        for row, items in enumerate(values):
            items = list(items)[:width]
            dense[row, : len(items)] = items
        return dense
    if tensor_spec.dtype == tf.string:
        return np.asarray([v if isinstance(v, bytes) else str(v) for v in values.reshape(-1)], dtype=object).reshape(
            values.shape
        )
    return values.astype(numpy_dtype)


def _synthetic_column(spec: Optional[FeatureSpec], name: str, tensor_spec: tf.TensorSpec, num_rows: int) -> np.ndarray:
    feature = spec[name] if spec is not None and name in spec else None
    vocabulary = list(feature.vocabulary or []) if feature is not None and feature.kind != "numeric" else []
    is_string = tensor_spec.dtype == tf.string
    if tensor_spec.shape.rank == 2 and (is_string or tensor_spec.dtype.is_integer):
        width = tensor_spec.shape[1] or _DEFAULT_SEQUENCE_WIDTH
        rows = np.empty(num_rows, dtype=object)
        for row in range(num_rows):
            rows[row] = vocabulary[:width] or ["" if is_string else 0]
        return dense_column(rows, tf.TensorSpec([None, width], tensor_spec.dtype))
    if feature is not None and feature.kind == "numeric":
        return dense_column(np.full(num_rows, feature.mean), tensor_spec)
    if feature is not None and feature.kind == "text":
        return dense_column(np.asarray([" ".join(map(str, vocabulary[:3]))] * num_rows), tensor_spec)
    if vocabulary:
        return dense_column(np.asarray([vocabulary[i % len(vocabulary)] for i in range(num_rows)]), tensor_spec)
    shape = [num_rows] + [d or 1 for d in tensor_spec.shape[1:]]
    return np.full(shape, "" if is_string else 0, dtype=object if is_string else tensor_spec.dtype.as_numpy_dtype)


def example_features(
    signature: Mapping[str, tf.TensorSpec],
    spec: Optional[FeatureSpec] = None,
    num_rows: int = 4,
    columns: Optional[Mapping[str, np.ndarray]] = None,
) -> Dict[str, np.ndarray]:
    """Plausible raw inputs for ``signature``: real rows where ``columns`` has them, else from ``spec``.

    Synthetic values: the most frequent vocabulary values, the training mean of numeric
    features, the first vocabulary values as a padded sequence. Used for warmup requests
    and to trace an export before saving.
    """
    rows: Dict[str, np.ndarray] = {}
    for name, tensor_spec in signature.items():
        if columns is not None and name in columns and len(columns[name]) >= num_rows:
            rows[name] = dense_column(np.asarray(columns[name])[:num_rows], tensor_spec)
        else:
            rows[name] = _synthetic_column(spec, name, tensor_spec, num_rows)
    return rows


def missing_feature(error: KeyError) -> str:
    """The feature name of a ``KeyError`` raised by ``features[name]``, also when Keras wrapped it.

    Keras re-raises errors from a layer's ``call`` as ``KeyError("Exception encountered when
    calling layer ...\n\n<original message>\n\nCall arguments ...")``.
    """
    message = str(error.args[0]) if error.args else str(error)
    if "\n\n" in message:
        message = message.split("\n\n")[1]
    return repr(message.strip().strip("'\""))


def describe(signature: Mapping[str, tf.TensorSpec]) -> Dict[str, Dict[str, object]]:
    """JSON-friendly ``{name: {"dtype": "string", "shape": [-1]}}`` of a signature."""
    return {
        name: {"dtype": s.dtype.name, "shape": [-1 if d is None else d for d in s.shape.as_list()]}
        for name, s in signature.items()
    }


def checked_features(features: Mapping[str, tf.Tensor], signature: Mapping[str, tf.TensorSpec]) -> Dict[str, tf.Tensor]:
    """``features`` after run-time checks that name the input: shape (rank, fixed widths), one batch size.

    A reloaded signature checks dtypes but not shapes, so without these a ``[1, 2]`` input for a
    ``[None, 3]`` feature, a scalar, or inputs of different batch sizes would be answered
    (broadcast) or fail deep inside the model without a name. ``tf.ensure_shape`` checks at run
    time (a static rank check would be folded away, since the graph believes the signature's
    shapes); its error reads ``Shape of tensor <input> [...] is not compatible with expected shape``.

    Example (inside a serving ``tf.function``)::

        features = checked_features(features, signature)
    """
    checked: Dict[str, tf.Tensor] = {}
    batch, first = None, None
    for name, spec in signature.items():
        value = tf.ensure_shape(features[name], spec.shape, name=f"check_{name}")
        size = tf.shape(value)[0]
        if batch is None:
            batch, first = size, name
            checked[name] = value
            continue
        same_batch = tf.debugging.assert_equal(
            size, batch, message=f"input `{name}` has a different batch size than input `{first}`"
        )
        with tf.control_dependencies([same_batch]):
            checked[name] = tf.identity(value)
    return checked
