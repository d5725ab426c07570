"""Feature declarations, vocabularies and normalisation statistics, fitted on training data.

A ``FeatureSpec`` lists each feature a model reads, its kind, and (after ``fit``) what it
learned from the training split: vocabularies with OOV buckets, mean and standard
deviation of numeric features. It builds the Keras preprocessing layers once, so training
and serving map raw values the same way, and it saves as JSON next to a model.

Kinds:
    * ``categorical``: one id per row (string or int64). Lookup index 0..num_oov-1 are OOV
      buckets, known values follow.
    * ``numeric``: float; normalised with the training mean / std. NaN is rejected.
    * ``sequence``: a list of ids per row (e.g. genres, a history). Raw padding (``""`` for
      strings, ``-1`` for int64 ids) maps to index 0, then the OOV buckets, then known values.
    * ``text``: a string, lower-cased and stripped of punctuation like Keras'
      ``TextVectorization`` default, split on white space.

Example::

    spec = FeatureSpec([Feature("user_id", "categorical"), Feature("age", "numeric")])
    spec = spec.fit(joined_columns(split.train))
    user_lookup = spec.lookup_layer("user_id")
    indices = spec.encode(columns)        # pre-indexed ids for models built with raw_ids=False
    spec.save("model_dir/feature_spec.json")
"""

import collections
import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import Columns

KINDS = ("categorical", "numeric", "sequence", "text")
COMPRESSIONS = ("hash", "qr", "float16", "pq")
ID_DTYPES = ("string", "int64")
FORMAT_VERSION = 1
# Raw padding of sequence features: "" for strings, -1 for int64 ids (so id 0 stays a real id).
SEQUENCE_PADDING = {"string": "", "int64": -1}
# Keras TextVectorization's default punctuation set, so fitted vocabularies match the layer.
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']')


class FeatureSpecError(InputError):
    """The spec and the data (or a saved file) disagree; the message names the feature."""


def text_tokens(text: str) -> List[str]:
    """Tokens as Keras ``TextVectorization`` makes them by default."""
    return _PUNCTUATION.sub("", text.lower()).split()


@dataclass
class Feature:
    """One feature. ``vocabulary`` / ``mean`` / ``std`` are filled by ``FeatureSpec.fit``.

    Args:
        name: column name in the data and key in a batch dict.
        kind: ``categorical``, ``numeric``, ``sequence`` or ``text``.
        dtype: id dtype for categorical / sequence features (``string`` or ``int64``).
        num_oov_buckets: OOV buckets for unseen values (>= 1 so serving never fails).
        min_count: frequency-based vocabulary pruning (categorical, sequence and text
            features; >= 1): values seen fewer than ``min_count`` times in the training
            data ``fit`` reads are left out of the vocabulary, so they map to the OOV
            bucket(s) like unseen values and take no embedding row. ``pruned_values``
            records how many were left out; ``FeatureEmbedding.memory_report`` reports
            the bytes this saves (``unpruned_bytes``).
        max_tokens: keep at most this many most frequent values (None: all).
        max_length: sequence / text length for padding or truncation (None: ragged).
        num_buckets: numeric features only: also fit this many quantile buckets, so the
            feature can be embedded by bucket (``discretization_layer``).
        compression: how ``FeatureEmbedding`` stores this id feature's embeddings (categorical
            or sequence only): ``None`` (a slice of the fused table), ``"hash"`` (hash
            embeddings: the sum of ``num_hashes`` rows of a shared pool of
            ``compression_buckets`` rows), ``"qr"`` (quotient-remainder: the element-wise
            product of a quotient row and a remainder row, ``compression_buckets`` = the
            remainder modulus, default ``ceil(sqrt(vocabulary_size))``) or ``"float16"``
            (its own table stored in float16) or ``"pq"`` (product quantisation:
            each id's vector is ``pq_subspaces`` codebook entries, one per sub-space, so
            the served table is ``[vocabulary_size, pq_subspaces]`` small integer codes
            plus ``pq_subspaces x pq_centroids`` centroids; trained end to end as in
            Differentiable Product Quantization, or made from a trained table by
            ``tfrecs.layers.quantize_embeddings``). See ``tfrecs.layers.compressed_embedding``.
        compression_buckets: pool rows (``hash``, default ``vocabulary_size // 8``) or
            remainder modulus (``qr``).
        num_hashes: hash functions of ``hash`` compression (>= 1).
        pq_subspaces: ``pq`` only: sub-spaces ``M`` (>= 1; must divide the embedding
            dimension the model uses, checked when ``FeatureEmbedding`` is built; None:
            ``embedding_dim // 4``, or ``// 2`` / ``// 1`` when 4 does not divide it).
        pq_centroids: ``pq`` only: centroids ``K`` per sub-space (>= 1); codes are uint8
            up to 256, int16 up to 32768, int32 beyond.
        pq_frozen: ``pq`` only: ``False`` (training: a full-precision query row per id,
            quantised to its nearest centroids on every call with a straight-through
            gradient); ``True`` (serving: fixed codes + codebooks only, what
            ``quantize_embeddings`` writes).
        pruned_values: set by ``fit``: distinct training values ``min_count`` or
            ``max_tokens`` left out of the vocabulary (they share the OOV buckets).
    """

    name: str
    kind: str
    dtype: str = "string"
    num_oov_buckets: int = 1
    min_count: int = 1
    max_tokens: Optional[int] = None
    max_length: Optional[int] = None
    num_buckets: Optional[int] = None
    vocabulary: Optional[list] = None
    mean: Optional[float] = None
    std: Optional[float] = None
    boundaries: Optional[list] = None
    compression: Optional[str] = None
    compression_buckets: Optional[int] = None
    num_hashes: int = 2
    pq_subspaces: Optional[int] = None
    pq_centroids: int = 256
    pq_frozen: bool = False
    pruned_values: Optional[int] = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise FeatureSpecError(
                f"feature {self.name!r}: unknown kind {self.kind!r}; choose one of {', '.join(KINDS)}"
            )
        if self.kind in ("categorical", "sequence") and self.dtype not in ID_DTYPES:
            raise FeatureSpecError(f"feature {self.name!r}: dtype must be one of {ID_DTYPES}, got {self.dtype!r}")
        if self.num_oov_buckets < 1:
            raise FeatureSpecError(f"feature {self.name!r}: num_oov_buckets must be >= 1, got {self.num_oov_buckets}")
        if self.kind == "text" and self.num_oov_buckets != 1:
            raise FeatureSpecError(
                f"feature {self.name!r}: text features have exactly one OOV index (TextVectorization)"
            )
        if self.num_buckets is not None and (self.kind != "numeric" or self.num_buckets < 2):
            raise FeatureSpecError(f"feature {self.name!r}: num_buckets needs a numeric feature and >= 2 buckets")
        if self.compression is not None:
            if self.compression not in COMPRESSIONS:
                raise FeatureSpecError(
                    f"feature {self.name!r}: unknown compression {self.compression!r}; "
                    f"choose one of {', '.join(COMPRESSIONS)} or None"
                )
            if self.kind not in ("categorical", "sequence"):
                raise FeatureSpecError(
                    f"feature {self.name!r}: compression is for categorical or sequence features, not {self.kind}"
                )
        if self.compression_buckets is not None and self.compression_buckets < 1:
            raise FeatureSpecError(
                f"feature {self.name!r}: compression_buckets must be >= 1, got {self.compression_buckets}"
            )
        if self.num_hashes < 1:
            raise FeatureSpecError(f"feature {self.name!r}: num_hashes must be >= 1, got {self.num_hashes}")
        _check_whole(self, "min_count", self.min_count)
        if self.min_count != 1 and self.kind == "numeric":
            raise FeatureSpecError(
                f"feature {self.name!r}: min_count prunes vocabularies of categorical, sequence or text features, "
                f"not of a numeric feature (got min_count={self.min_count})"
            )
        if self.pq_subspaces is not None:
            _check_whole(self, "pq_subspaces", self.pq_subspaces)
        _check_whole(self, "pq_centroids", self.pq_centroids)
        if self.pq_frozen and self.compression != "pq":
            raise FeatureSpecError(
                f"feature {self.name!r}: pq_frozen=True needs compression='pq', got compression={self.compression!r}"
            )

    @property
    def fitted(self) -> bool:
        return self.mean is not None if self.kind == "numeric" else self.vocabulary is not None

    @property
    def vocabulary_size(self) -> int:
        """Rows an embedding table needs: known values + OOV buckets (+ padding for sequences
        and text); for a bucketised numeric feature, its number of buckets."""
        self._require_fitted()
        if self.kind == "numeric":
            if self.boundaries is None:
                raise FeatureSpecError(f"feature {self.name!r} is numeric without num_buckets: it has no vocabulary")
            return len(self.boundaries) + 1
        padding = 1 if self.kind in ("sequence", "text") else 0
        return len(self.vocabulary) + self.num_oov_buckets + padding

    def _require_fitted(self):
        if not self.fitted:
            raise FeatureSpecError(f"feature {self.name!r} is not fitted yet: call FeatureSpec.fit on training data")


def _check_whole(feature: Feature, argument: str, value) -> None:
    """``value`` must be a whole number >= 1 (the error names the feature and the argument)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise FeatureSpecError(f"feature {feature.name!r}: {argument} must be a whole number >= 1, got {value!r}")


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_id(feature: Feature, value) -> bool:
    if feature.dtype == "string":
        return isinstance(value, (str, bytes))
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _refuse_bad(feature: Feature, bad: list, total: int, expected: str) -> None:
    if bad:
        raise FeatureSpecError(
            f"feature {feature.name!r}: {len(bad)} of {total} value(s) are not {expected}, "
            f"e.g. {bad[0]!r}; clean or convert the column first"
        )


def _check_id_values(feature: Feature, values: np.ndarray) -> None:
    kind = values.dtype.kind
    expected = "string ids" if feature.dtype == "string" else "int64 ids"
    if kind == "O":
        _refuse_bad(feature, [v for v in values.reshape(-1).tolist() if not _is_id(feature, v)], values.size, expected)
        return
    if feature.dtype == "string" and kind not in "US":
        raise FeatureSpecError(f"feature {feature.name!r}: expected string ids, got dtype {values.dtype}")
    if feature.dtype == "int64" and kind not in "iu":
        raise FeatureSpecError(f"feature {feature.name!r}: expected int64 ids, got dtype {values.dtype}")


def _check_numeric(feature: Feature, values: np.ndarray) -> None:
    if values.dtype.kind == "O":
        _refuse_bad(
            feature,
            [v for v in values.tolist() if isinstance(v, bool) or not isinstance(v, (int, float))],
            len(values),
            "numbers",
        )
        values = values.astype(np.float64)
    if values.dtype.kind not in "fiub":
        raise FeatureSpecError(f"feature {feature.name!r}: expected numbers, got dtype {values.dtype}")
    if values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (np.abs(values) > _FLOAT32_MAX)
        if bad.any():
            raise FeatureSpecError(
                f"feature {feature.name!r}: {int(bad.sum())} value(s) are NaN, infinite or beyond float32's range "
                f"(e.g. {values[bad][0]!r}); impute, clip or drop them first"
            )
    elif np.abs(values.astype(np.float64)).max(initial=0.0) > _FLOAT32_MAX:
        raise FeatureSpecError(f"feature {feature.name!r}: values beyond float32's range")


def _id_array(feature: Feature, values: np.ndarray) -> np.ndarray:
    """Ids in the dtype the feature's lookup layer takes (str or int64)."""
    return values.astype(str) if feature.dtype == "string" else values.astype(np.int64)


def _flatten_lists(feature: Feature, values: np.ndarray) -> np.ndarray:
    if values.dtype != object:
        raise FeatureSpecError(
            f"feature {feature.name!r}: a sequence feature needs list values (an object array), got dtype {values.dtype}"
        )
    _refuse_bad(
        feature, [row for row in values if not isinstance(row, (list, tuple, np.ndarray))], len(values), "lists of ids"
    )
    flat = [v for row in values for v in row]
    expected = "string ids" if feature.dtype == "string" else "int64 ids (-1 pads)"
    _refuse_bad(feature, [v for v in flat if not _is_id(feature, v)], len(flat), expected)
    return np.asarray(flat, dtype=str if feature.dtype == "string" else np.int64) if flat else np.array([], dtype=str)


class FeatureSpec:
    """An ordered set of ``Feature`` declarations (see the module docstring)."""

    def __init__(self, features: Iterable[Feature]):
        self.features: Dict[str, Feature] = {}
        for feature in features:
            if feature.name in self.features:
                raise FeatureSpecError(f"feature {feature.name!r} is declared twice")
            self.features[feature.name] = feature

    def __getitem__(self, name: str) -> Feature:
        try:
            return self.features[name]
        except KeyError:
            raise KeyError(f"feature {name!r} is not in the spec (has {list(self.features)})") from None

    def __contains__(self, name: str) -> bool:
        return name in self.features

    def __iter__(self):
        return iter(self.features.values())

    @property
    def names(self) -> List[str]:
        return list(self.features)

    def validate(self, columns: Columns) -> None:
        """Checks that every feature is present with a matching dtype.

        Raises:
            FeatureSpecError: names the first feature that is missing or has the wrong dtype.
        """
        for feature in self:
            if feature.name not in columns:
                raise FeatureSpecError(
                    f"feature {feature.name!r} is missing from the data (columns: {sorted(columns)})"
                )
            values = np.asarray(columns[feature.name])
            if feature.kind == "categorical":
                _check_id_values(feature, values)
            elif feature.kind == "numeric":
                _check_numeric(feature, values)
            elif feature.kind == "sequence":
                _flatten_lists(feature, values) if len(values) else None
            elif values.dtype.kind == "O":
                _refuse_bad(
                    feature, [v for v in values.tolist() if not isinstance(v, (str, bytes))], len(values), "text"
                )
            elif values.dtype.kind not in "US":
                raise FeatureSpecError(
                    f"feature {feature.name!r}: a text feature needs strings, got dtype {values.dtype}"
                )

    def fit(self, columns: Columns) -> "FeatureSpec":
        """Returns a copy with vocabularies and statistics learned from ``columns``.

        Pass training data only: whatever is fitted here is what the model knows.

        Raises:
            FeatureSpecError: the data does not match the spec, or is empty.
        """
        self.validate(columns)
        fitted = []
        for feature in self:
            values = np.asarray(columns[feature.name])
            if len(values) == 0:
                raise FeatureSpecError(f"feature {feature.name!r}: cannot fit on an empty column")
            if feature.kind == "numeric":
                as_float = values.astype(np.float64)
                boundaries = None
                if feature.num_buckets:
                    quantiles = np.quantile(as_float, np.linspace(0, 1, feature.num_buckets + 1)[1:-1])
                    boundaries = sorted(float(b) for b in np.unique(quantiles))
                fitted.append(
                    replace(feature, mean=float(as_float.mean()), std=float(as_float.std()), boundaries=boundaries)
                )
                continue
            if feature.kind == "categorical":
                tokens: Sequence = values.tolist()
            elif feature.kind == "sequence":
                tokens = _flatten_lists(feature, values).tolist()
            else:
                tokens = [t for text in values for t in text_tokens(str(text))]
            vocabulary, pruned = _vocabulary(tokens, feature)
            fitted.append(replace(feature, vocabulary=vocabulary, pruned_values=pruned))
        return FeatureSpec(fitted)

    # Keras layers built from the fitted state -------------------------------------------
    def lookup_layer(self, name: str):
        """``StringLookup`` / ``IntegerLookup`` mapping raw ids of a categorical or sequence feature to indices."""
        import tf_keras

        feature = self[name]
        if feature.kind not in ("categorical", "sequence"):
            raise FeatureSpecError(
                f"feature {name!r} is {feature.kind}; lookup layers are for categorical or sequence features"
            )
        feature._require_fitted()
        layer_cls = tf_keras.layers.StringLookup if feature.dtype == "string" else tf_keras.layers.IntegerLookup
        mask = SEQUENCE_PADDING[feature.dtype] if feature.kind == "sequence" else None
        return layer_cls(
            vocabulary=list(feature.vocabulary),
            num_oov_indices=feature.num_oov_buckets,
            mask_token=mask,
            name=f"{name}_lookup",
        )

    def normalization_layer(self, name: str):
        """``Normalization`` layer with the training mean and variance of a numeric feature."""
        import tf_keras

        feature = self[name]
        if feature.kind != "numeric":
            raise FeatureSpecError(f"feature {name!r} is {feature.kind}; normalisation is for numeric features")
        feature._require_fitted()
        return tf_keras.layers.Normalization(
            mean=feature.mean, variance=max(feature.std, 1e-12) ** 2, name=f"{name}_normalization"
        )

    def discretization_layer(self, name: str):
        """``Discretization`` layer with the fitted quantile boundaries of a bucketised numeric feature."""
        import tf_keras

        feature = self[name]
        if feature.kind != "numeric" or not feature.num_buckets:
            raise FeatureSpecError(f"feature {name!r}: discretization needs a numeric feature with num_buckets")
        feature._require_fitted()
        return tf_keras.layers.Discretization(bin_boundaries=list(feature.boundaries), name=f"{name}_buckets")

    def text_vectorization_layer(self, name: str):
        """``TextVectorization`` layer with the fitted token vocabulary of a text feature."""
        import tf_keras

        feature = self[name]
        if feature.kind != "text":
            raise FeatureSpecError(f"feature {name!r} is {feature.kind}; text vectorization is for text features")
        feature._require_fitted()
        return tf_keras.layers.TextVectorization(
            vocabulary=list(feature.vocabulary), output_sequence_length=feature.max_length, name=f"{name}_vectorizer"
        )

    def encode(self, columns: Columns, features: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        """Raw columns -> the lookup indices this spec's lookup layers produce (pre-indexed data).

        For users who index their data once (e.g. when writing TFRecords) and feed models
        built with ``raw_ids=False``, which then skip the hash lookups:

        * categorical: int64 ``[N]``: ``0..num_oov_buckets-1`` OOV buckets, then known values
          in vocabulary (training-frequency) order;
        * sequence: int64 ``[N, L]``: ``0`` padding (raw ``""`` / ``-1`` and empty places),
          then the OOV buckets, then known values. ``L`` is ``max_length`` (longer rows keep
          their first ``max_length`` items, as ``FeatureEmbedding`` reads them) or else the
          longest row. Rows may be lists (an object column) or an already padded 2-D array;
        * numeric and text: passed through unchanged; ``FeatureEmbedding`` normalises,
          buckets and tokenises them itself whether ``raw_ids`` is on or off.

        Args:
            columns: feature name -> raw column, as ``fit`` takes them.
            features: names to encode (default: every feature of the spec).

        Returns:
            Feature name -> NumPy array, for every requested feature.

        Raises:
            FeatureSpecError: a feature is missing from ``columns``, has the wrong dtype, or
                the spec is not fitted.

        Example::

            spec = FeatureSpec([Feature("user_id", "categorical")]).fit({"user_id": np.array(["a", "b", "a"])})
            spec.encode({"user_id": np.array(["a", "b", "zz"])})["user_id"]   # [1, 2, 0]
        """
        import tensorflow as tf

        encoded = {}
        for name in self.names if features is None else list(features):
            feature = self[name]
            if name not in columns:
                raise FeatureSpecError(f"feature {name!r} is missing from the data (columns: {sorted(columns)})")
            values = np.asarray(columns[name])
            if feature.kind in ("numeric", "text"):
                encoded[name] = values
                continue
            lookup = self.lookup_layer(name)
            if feature.kind == "categorical":
                _check_id_values(feature, values)
                encoded[name] = lookup(tf.constant(_id_array(feature, values.reshape(-1)))).numpy().astype(np.int64)
                continue
            if values.dtype != object and values.ndim == 2:
                _check_id_values(feature, values)
                indices = lookup(tf.constant(_id_array(feature, values))).numpy().astype(np.int64)
                encoded[name] = indices[:, : feature.max_length] if feature.max_length else indices
                continue
            flat = _flatten_lists(feature, values)
            _check_id_values(feature, flat) if len(flat) else None
            lengths = np.array([len(row) for row in values], dtype=np.int64)
            flat_indices = (
                lookup(tf.constant(_id_array(feature, flat))).numpy().astype(np.int64)
                if len(flat)
                else np.zeros(0, np.int64)
            )
            width = feature.max_length if feature.max_length else int(lengths.max(initial=0))
            padded = np.zeros((len(values), width), np.int64)
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            for row, (start, length) in enumerate(zip(starts, np.minimum(lengths, width))):
                padded[row, :length] = flat_indices[start : start + length]
            encoded[name] = padded
        return encoded

    # Persistence ----------------------------------------------------------------------------
    def to_config(self) -> Dict[str, Any]:
        """A JSON-compatible dict (what a model's ``get_config`` holds); ``from_config`` inverts it."""
        return {"format_version": FORMAT_VERSION, "features": [asdict(f) for f in self]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str = "<config>") -> "FeatureSpec":
        """Rebuilds a spec from ``to_config`` output. Raises ``FeatureSpecError`` naming ``source``."""
        try:
            if config.get("format_version") != FORMAT_VERSION:
                raise FeatureSpecError(f"{source}: unsupported format_version {config.get('format_version')!r}")
            return cls(Feature(**entry) for entry in config["features"])
        except (AttributeError, KeyError, TypeError) as error:
            raise FeatureSpecError(f"{source}: not a tfrecs FeatureSpec ({error})") from None

    @classmethod
    def coerce(cls, spec: Union["FeatureSpec", Mapping[str, Any]], argument: str = "spec") -> "FeatureSpec":
        """``spec`` itself, or the spec a ``to_config`` dict describes (models take either).

        Example::

            FeatureSpec.coerce(spec.to_config()).names == spec.names   # True
        """
        if isinstance(spec, FeatureSpec):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_config(spec, source=argument)
        raise FeatureSpecError(f"{argument} must be a FeatureSpec or its to_config() dict, got {type(spec).__name__}")

    def to_json(self) -> str:
        return json.dumps(self.to_config(), indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> "FeatureSpec":
        """Parses ``to_json`` output. Raises ``FeatureSpecError`` naming ``source`` on bad content."""
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise FeatureSpecError(f"{source}: not a tfrecs FeatureSpec file ({error})") from None
        if not isinstance(payload, dict):
            raise FeatureSpecError(f"{source}: not a tfrecs FeatureSpec file (not a JSON object)")
        return cls.from_config(payload, source=source)

    def save(self, path: str) -> None:
        """Writes the spec as JSON (e.g. ``<model dir>/feature_spec.json``)."""
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json())

    @classmethod
    def load(cls, path: str) -> "FeatureSpec":
        """Reads a spec written by ``save``."""
        with open(path, encoding="utf-8") as handle:
            return cls.from_json(handle.read(), source=path)


def _vocabulary(tokens: Sequence, feature: Feature) -> Tuple[list, int]:
    """Values by descending training frequency (ties by value), pruned by min_count / max_tokens,
    and how many distinct (non-padding) values the pruning left out."""
    counts = collections.Counter(tokens)
    padding = SEQUENCE_PADDING[feature.dtype] if feature.kind == "sequence" else None
    counts.pop(padding, None)
    ranked = sorted(
        (value for value, count in counts.items() if count >= feature.min_count),
        key=lambda value: (-counts[value], value),
    )
    if feature.max_tokens is not None:
        ranked = ranked[: feature.max_tokens]
    vocabulary = [int(v) if feature.dtype == "int64" and feature.kind != "text" else str(v) for v in ranked]
    return vocabulary, len(counts) - len(ranked)
