"""Raw features -> one embedding per feature, from a fitted ``FeatureSpec``.

Every id-like input (categorical ids, sequence items, text tokens, numeric buckets) is
looked up with the spec's own preprocessing layers, shifted by its feature's offset, and
read from ONE fused embedding table: one gather for all fields instead of dozens of small
lookups. Numeric features without buckets are normalised and multiply a learned vector
per feature (the FM / DeepFM treatment of dense fields). Sequence and text features are
mean-pooled over their non-padding positions.

Single-id fields (categorical ids, numeric buckets) are gathered together: one gather of
``[batch, fields]`` indices (plus per-field offsets) for all of them. A feature whose
``Feature.compression`` is ``"hash"``, ``"qr"``, ``"float16"`` or ``"pq"`` gets its own
compressed table instead (``tfrecs.layers.compressed_embedding``); ``memory_report()``
gives each feature's bytes next to what a plain float32 slice would take, and what it
would take without ``min_count`` / ``max_tokens`` pruning.

Post-training product quantisation: ``quantize_embeddings(model, ["item_id"])`` returns a
copy of a trained model (or ``FeatureEmbedding``) whose named features are stored as
frozen ``pq`` tables (k-means codes + codebooks of the trained vectors), every other weight
copied; trained ``pq`` features are frozen with their learned codes. The copy's spec says
so, so it saves and reloads as plain Keras.

Bad input: a batch missing a feature raises ``KeyError`` naming it; a raw id never seen in
training maps to its feature's OOV bucket(s) (by design, so serving never fails); NaN in
a numeric feature is imputed with the training mean (``FeatureSpec.fit`` rejects NaN in
training data).

Pre-indexed ids (``raw_ids=False``): categorical and sequence inputs are the lookup indices
``FeatureSpec.encode`` produces (categorical ``[OOV buckets..., known...]``, sequence
``[padding 0, OOV buckets..., known...]``), NOT catalogue positions (``IdIndex``). They skip
the hash lookups and read the same rows raw ids would; an index outside the feature's
``[0, vocabulary_size)`` raises ``InvalidArgumentError`` naming the feature. Numeric and
text features are read raw in both modes (``encode`` passes them through).

The layer is a plain Keras layer: ``get_config`` holds the spec's ``to_config`` dict and
the constructor arguments, and ``stacked`` / ``concatenated`` go through ``__call__``
(``mode=``), so the fused table is built and counted like any Keras weight.

Example::

    spec = FeatureSpec([Feature("user_id", "categorical"), Feature("age", "numeric"),
                        Feature("genres", "sequence")]).fit(joined_columns(split.train))
    embed = FeatureEmbedding(spec, embedding_dim=16)
    vectors = embed({"user_id": tf.constant(["196"]), "age": tf.constant([24.0]),
                     "genres": tf.ragged.constant([["Drama", "Comedy"]])})
    vectors["genres"].shape        # (1, 16)
    embed.stacked(features).shape  # (1, 3, 16): fields in spec order, for FM / CIN
    pre_indexed = FeatureEmbedding(spec, 16, raw_ids=False)
    pre_indexed(spec.encode(columns))   # same rows as embed(columns) with the same weights
"""

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FORMAT_VERSION, SEQUENCE_PADDING, FeatureSpec, FeatureSpecError
from tfrecs.layers.compressed_embedding import (
    PQEmbedding,
    default_subspaces,
    make_compressed_embedding,
    product_quantize,
)

MODES = ("dict", "stacked", "concatenated")


@export("tfrecs.layers.FeatureEmbedding")
class FeatureEmbedding(ConfigFromInit, tf_keras.layers.Layer):
    """Embeds raw features of a fitted ``FeatureSpec`` (see the module docstring).

    Args:
        spec: a fitted ``FeatureSpec`` (or its ``to_config()`` dict).
        embedding_dim: size of every feature's embedding.
        features: names to embed, in output order (default: every feature of the spec).
        raw_ids: ``True``: categorical / sequence inputs are raw ids mapped by the spec's
            lookups; ``False``: they are ``FeatureSpec.encode`` lookup indices (for data
            written pre-indexed, which skips the hash lookups on the hot path).
        embeddings_regularizer: regulariser of the fused table (name, config dict or object).
        embeddings_initializer: initialiser of the fused table (name, config dict or object).
        check_indices: with ``raw_ids=False``, check that indices are in range (an error
            naming the feature instead of a bare gather error).
        numeric_as: ``"embedding"``: a dense numeric feature is its normalised value times a
            learned vector, one field among the others; ``"values"``: dense numeric features
            are left out of the embeddings (``feature_names``) and read as normalised values
            with ``numeric_values(features)`` (DeepCTR / DCN style: straight into the MLP).

    Call args:
        features: dict of feature name -> tensor (dense or ragged); extra keys are ignored.
        mode: ``"dict"`` (``{name: [batch, embedding_dim]}``), ``"stacked"``
            (``[batch, fields, embedding_dim]``) or ``"concatenated"``
            (``[batch, fields * embedding_dim]``).

    Raises:
        KeyError: a requested feature is not in the spec; at call, a feature is missing.
        FeatureSpecError: the spec is not fitted.
        ValueError: ``embedding_dim < 1``, an unknown ``numeric_as`` or ``mode``.
    """

    def __init__(
        self,
        spec: Union[FeatureSpec, dict],
        embedding_dim: int,
        features: Optional[Sequence[str]] = None,
        raw_ids: bool = True,
        embeddings_regularizer=None,
        embeddings_initializer="uniform",
        check_indices: bool = True,
        numeric_as: str = "embedding",
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)  # numeric inputs are normalised in float32
        super().__init__(**kwargs)
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if numeric_as not in ("embedding", "values"):
            raise ValueError(f"numeric_as must be 'embedding' or 'values', got {numeric_as!r}")
        spec = FeatureSpec.coerce(spec)
        self.spec = spec
        self.embedding_dim = int(embedding_dim)
        self.features = tuple(features) if features is not None else None
        self.raw_ids = bool(raw_ids)
        self.embeddings_regularizer = tf_keras.regularizers.get(embeddings_regularizer)
        self.embeddings_initializer = tf_keras.initializers.get(embeddings_initializer)
        self.check_indices = bool(check_indices)
        self.numeric_as = numeric_as
        names = list(features) if features is not None else spec.names
        dense = [n for n in names if spec[n].kind == "numeric" and not spec[n].num_buckets]
        self.numeric_names: List[str] = dense if numeric_as == "values" else []
        self.feature_names: List[str] = [n for n in names if n not in self.numeric_names]
        self._preprocess: Dict[str, tf_keras.layers.Layer] = {}
        self._offsets: Dict[str, int] = {}
        self._dense_numeric: List[str] = []
        self._single: List[str] = []  # one id per row, in the fused table: gathered together
        self._pooled: List[str] = []  # sequence / text in the fused table
        self._compressed: Dict[str, tf_keras.layers.Layer] = {}
        total = 0
        for name in self.feature_names:
            feature = spec[name]
            if feature.kind == "numeric" and not feature.num_buckets:
                feature._require_fitted()
                self._dense_numeric.append(name)
                continue
            if feature.kind == "numeric":
                self._preprocess[name] = spec.discretization_layer(name)
            elif feature.kind == "text":
                self._preprocess[name] = spec.text_vectorization_layer(name)
            elif raw_ids:
                self._preprocess[name] = spec.lookup_layer(name)
            if getattr(feature, "compression", None):
                self._compressed[name] = make_compressed_embedding(feature, embedding_dim)
                continue
            (self._pooled if feature.kind in ("sequence", "text") else self._single).append(name)
            self._offsets[name] = total
            total += feature.vocabulary_size
        self.table_size = total
        self.table = tf_keras.layers.Embedding(
            max(total, 1),
            embedding_dim,
            name="fused_table",
            embeddings_regularizer=self.embeddings_regularizer,
            embeddings_initializer=self.embeddings_initializer,
        )
        self._single_offsets = tf.constant([self._offsets[n] for n in self._single], tf.int64)
        # The spec's Normalization statistics, applied to all dense numeric fields at once.
        for name in self.numeric_names:
            spec[name]._require_fitted()
        normalised = self._dense_numeric + self.numeric_names
        self._numeric_mean = tf.constant([spec[n].mean for n in normalised], tf.float32)
        self._numeric_std = tf.constant([max(spec[n].std, 1e-12) for n in normalised], tf.float32)
        self.numeric_vectors = None
        if self._dense_numeric:
            self.numeric_vectors = self.add_weight(
                "numeric_vectors", shape=(len(self._dense_numeric), embedding_dim), initializer="glorot_uniform"
            )
        order = self._dense_numeric + self._single + self._pooled + list(self._compressed)
        permutation = [order.index(name) for name in self.feature_names]
        self._permutation = None if permutation == list(range(len(order))) else tf.constant(permutation, tf.int32)

    def _indices(self, name: str, value: tf.Tensor) -> tf.Tensor:
        """Per-feature lookup indices (index 0 pads sequences / text), not yet offset."""
        feature = self.spec[name]
        if feature.kind == "sequence" and isinstance(value, tf.RaggedTensor):
            padding = SEQUENCE_PADDING[feature.dtype] if self.raw_ids else 0  # encode indices pad with 0
            value = value.to_tensor(default_value=padding, shape=[None, feature.max_length])
        elif feature.kind == "sequence" and feature.max_length:
            value = value[:, : feature.max_length]
        if feature.kind == "numeric":
            value = tf.reshape(value, [-1])
        elif feature.kind == "categorical":
            value = tf.reshape(value, [-1])
        layer = self._preprocess.get(name)
        indices = tf.cast(layer(value) if layer is not None else value, tf.int64)
        if layer is None and self.check_indices:
            size = feature.vocabulary_size
            tf.debugging.assert_non_negative(indices, message=f"feature {name!r}: negative index")
            tf.debugging.assert_less(
                indices,
                tf.constant(size, tf.int64),
                message=f"feature {name!r}: index outside [0, {size}) (raw_ids=False "
                "expects the lookup indices FeatureSpec.encode gives)",
            )
        return indices

    @staticmethod
    def _pool(indices: tf.Tensor, vectors: tf.Tensor) -> tf.Tensor:
        """Mean over non-padding (index 0) positions of ``[B, L, d]``; ``[B, d]`` passes through."""
        if indices.shape.rank != 2:
            return vectors
        mask = tf.cast(tf.not_equal(indices, 0), vectors.dtype)[..., tf.newaxis]
        return tf.reduce_sum(vectors * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def _groups(self, features: Mapping[str, tf.Tensor]) -> List[tf.Tensor]:
        """``[B, k, d]`` blocks: dense numeric, single-id fused, pooled fused, compressed."""
        missing = [name for name in self.feature_names if name not in features]
        if missing:
            raise KeyError(f"FeatureEmbedding: batch is missing feature(s) {missing} (has {sorted(features)})")
        blocks = []
        if self._dense_numeric:
            scaled = tf.cast(self._normalised(features, self._dense_numeric, 0), self.compute_dtype)[..., tf.newaxis]
            blocks.append(scaled * tf.cast(self.numeric_vectors, self.compute_dtype))
        if self._single:
            indices = tf.stack([self._indices(name, features[name]) for name in self._single], axis=1)
            blocks.append(self.table(indices + self._single_offsets))
        pooled = [
            self._pool(i, self.table(i + self._offsets[n]))
            for n, i in ((n, self._indices(n, features[n])) for n in self._pooled)
        ]
        pooled += [
            self._pool(i, tf.cast(layer(i), self.compute_dtype))
            for layer, i in ((lay, self._indices(n, features[n])) for n, lay in self._compressed.items())
        ]
        if pooled:
            blocks.append(tf.stack(pooled, axis=1))
        return blocks

    def _normalised(self, features: Mapping[str, tf.Tensor], names: List[str], first: int) -> tf.Tensor:
        """``[batch, len(names)]`` float32 z-scores (NaN -> 0, the training mean)."""
        raw = tf.stack([tf.reshape(tf.cast(features[n], tf.float32), [-1]) for n in names], axis=1)
        last = first + len(names)
        normalised = (raw - self._numeric_mean[first:last]) / self._numeric_std[first:last]
        return tf.where(tf.math.is_nan(normalised), tf.zeros_like(normalised), normalised)

    def numeric_values(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """``[batch, len(numeric_names)]`` float32 normalised values (``numeric_as="values"``)."""
        missing = [name for name in self.numeric_names if name not in features]
        if missing:
            raise KeyError(f"FeatureEmbedding: batch is missing feature(s) {missing} (has {sorted(features)})")
        if not self.numeric_names:
            return tf.zeros([tf.shape(next(iter(features.values())))[0], 0], tf.float32)
        return self._normalised(features, self.numeric_names, len(self._dense_numeric))

    def stacked(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """``[batch, num_features, embedding_dim]`` in ``feature_names`` order (FM, CIN, attention)."""
        return self(features, mode="stacked")

    def concatenated(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """``[batch, num_features * embedding_dim]`` (deep towers, MLPs)."""
        return self(features, mode="concatenated")

    def call(self, features: Mapping[str, tf.Tensor], mode: str = "dict"):
        """``{feature name: [batch, embedding_dim]}`` for every embedded feature (or the
        ``stacked`` / ``concatenated`` view, see the class docstring)."""
        if mode not in MODES:
            raise ValueError(f"FeatureEmbedding: mode must be one of {MODES}, got {mode!r}")
        blocks = self._groups(features)
        stacked = blocks[0] if len(blocks) == 1 else tf.concat(blocks, axis=1)
        stacked = stacked if self._permutation is None else tf.gather(stacked, self._permutation, axis=1)
        if mode == "stacked":
            return stacked
        if mode == "concatenated":
            return tf.reshape(stacked, [-1, len(self.feature_names) * self.embedding_dim])
        return {name: stacked[:, position] for position, name in enumerate(self.feature_names)}

    def memory_report(self) -> Dict[str, Dict[str, int]]:
        """Per feature: ``{"bytes": held, "uncompressed_bytes": one float32 row per lookup
        index, "unpruned_bytes": one float32 row per index had ``min_count`` / ``max_tokens``
        pruned nothing}``. A ``pq`` feature's ``bytes`` are its serving bytes (codes +
        codebooks); while it trains, its query table comes on top
        (``PQEmbedding.training_memory_bytes``)."""
        itemsize = np.dtype(self.dtype).itemsize
        report = {}
        for name in self.feature_names:
            feature = self.spec[name]
            rows = 1 if name in self._dense_numeric else feature.vocabulary_size
            plain = rows * self.embedding_dim * 4
            held = (
                self._compressed[name].memory_bytes()
                if name in self._compressed
                else rows * self.embedding_dim * itemsize
            )
            pruned = 0 if name in self._dense_numeric else (getattr(feature, "pruned_values", None) or 0)
            report[name] = {
                "bytes": int(held),
                "uncompressed_bytes": int(plain),
                "unpruned_bytes": int((rows + pruned) * self.embedding_dim * 4),
            }
        return report

    def memory_bytes(self) -> int:
        """Bytes held by the embedding parameters (fused table, numeric vectors, compressed tables)."""
        return int(sum(entry["bytes"] for entry in self.memory_report().values()))

    def feature_table(self, name: str) -> np.ndarray:
        """``[vocabulary_size, embedding_dim]`` float32: the vector of every lookup index of an
        embedded id / token / bucket feature (its fused-table slice, or its compressed layer
        read at every index), as the layer computes them now.

        Raises:
            KeyError: ``name`` is not embedded here.
            ValueError: ``name`` is a dense numeric feature (one learned vector, no table).
        """
        if name not in self.feature_names:
            raise KeyError(f"FeatureEmbedding: feature {name!r} is not embedded here (has {self.feature_names})")
        if name in self._dense_numeric:
            raise ValueError(f"FeatureEmbedding: feature {name!r} is dense numeric: it has no table")
        size = self.spec[name].vocabulary_size
        if name in self._compressed:
            rows = [
                tf.cast(self._compressed[name](tf.range(start, min(start + 65536, size), dtype=tf.int64)), tf.float32)
                for start in range(0, size, 65536)
            ]
            return tf.concat(rows, axis=0).numpy()
        self._build_table()
        start = self._offsets[name]
        return tf.cast(self.table.embeddings[start : start + size], tf.float32).numpy()

    def _build_table(self) -> None:
        if not self.table.built:
            self.table.build((None,))

    def _copy_embeddings(self, source: "FeatureEmbedding", codes: Mapping[str, Any]) -> None:
        """Copies ``source``'s embedding weights into this layer (same features, same spec but
        for the ``pq`` features of ``codes``: name -> ``(codes, codebooks)`` for frozen PQ layers)."""
        self._build_table()
        source._build_table()
        if self.numeric_vectors is not None:
            self.numeric_vectors.assign(source.numeric_vectors)
        table = self.table.embeddings.numpy()
        for name, offset in self._offsets.items():
            table[offset : offset + self.spec[name].vocabulary_size] = source.feature_table(name)
        self.table.embeddings.assign(table)
        for name, layer in self._compressed.items():
            if name in codes:
                layer.set_codes(*codes[name])
            else:
                layer.set_weights(source._compressed[name].get_weights())


def _replace_specs(config: Any, features: Mapping[str, Any]) -> Any:
    """``config`` with every FeatureSpec config inside it (a model's ``spec``, nested layers')
    taking the changed ``features`` (name -> ``Feature``)."""
    if isinstance(config, dict):
        if config.get("format_version") == FORMAT_VERSION and isinstance(config.get("features"), list):
            entries = [
                dataclasses.asdict(features[entry["name"]]) if entry.get("name") in features else entry
                for entry in config["features"]
            ]
            return {**config, "features": entries}
        return {key: _replace_specs(value, features) for key, value in config.items()}
    if isinstance(config, list):
        return [_replace_specs(value, features) for value in config]
    return config


def _embedding_layers(obj) -> List[FeatureEmbedding]:
    """Every ``FeatureEmbedding`` in ``obj`` (itself included), in tracking order."""
    return [
        layer for layer in obj._flatten_layers(include_self=True, recursive=True) if isinstance(layer, FeatureEmbedding)
    ]


def quantize_embeddings(
    obj,
    features: Optional[Sequence[str]] = None,
    num_subspaces: Optional[int] = None,
    num_centroids: int = 256,
    seed: int = 0,
    iterations: int = 50,
):
    """Post-training product quantisation: a copy of ``obj`` for serving, with PQ tables.

    ``obj`` is a trained ``FeatureEmbedding`` or a Keras model holding some (every tfrecs
    model, or a functional model around one). Each feature named in ``features`` is
    product-quantised in every ``FeatureEmbedding`` that embeds it: its trained vectors
    (``FeatureEmbedding.feature_table``: fused slice or compressed layer) are clustered by
    k-means per sub-space (``product_quantize``, seeded) and the copy stores only the codes
    and codebooks (a frozen ``PQEmbedding``). Features trained with ``compression="pq"``
    (Differentiable PQ) are frozen with their learned codes and codebooks (no k-means), named
    or not. Every other weight is copied unchanged. The copy is a new object built from
    ``obj``'s config with the changed features in its spec (``compression="pq"``,
    ``pq_frozen=True``), so it saves and reloads as plain Keras; it is not compiled (compile
    it to fine-tune: the codebooks stay trainable, the codes do not).

    Args:
        obj: a built ``FeatureEmbedding`` or model.
        features: names to quantise (None: only freeze the trained ``pq`` features).
        num_subspaces: ``M`` (divides the embedding dimension; None: ``default_subspaces``).
        num_centroids: ``K`` per sub-space.
        seed, iterations: of the k-means (``product_quantize``).

    Returns:
        The quantised copy (same class as ``obj``).

    Raises:
        FeatureSpecError: a named feature is not embedded by any ``FeatureEmbedding`` of
            ``obj``, is dense numeric, or ``M`` does not divide the embedding dimension,
            or bad ``M`` / ``K`` (each names the feature and the argument).
        ValueError: ``obj`` holds no ``FeatureEmbedding``, or it is not built.

    Example::

        result = train(TrainConfig(model="deepfm", epochs=3))
        serving = quantize_embeddings(result.model, ["user_id", "item_id"], num_subspaces=4, num_centroids=64)
        [layer.memory_bytes() for layer in serving.submodules if isinstance(layer, FeatureEmbedding)]
    """
    layers = _embedding_layers(obj)
    if not layers:
        raise ValueError(f"quantize_embeddings: {type(obj).__name__} holds no FeatureEmbedding")
    named = [features] if isinstance(features, str) else list(features or [])
    for name in named:
        if not any(name in layer.feature_names for layer in layers):
            raise FeatureSpecError(f"feature {name!r}: quantize_embeddings finds no FeatureEmbedding that embeds it")
        if any(name in layer._dense_numeric for layer in layers):
            raise FeatureSpecError(f"feature {name!r}: a dense numeric feature has no table to quantise")
    trained = {
        name
        for layer in layers
        for name, sub in layer._compressed.items()
        if isinstance(sub, PQEmbedding) and not sub.frozen
    }
    changed = {}
    for name in sorted(set(named) | trained):
        feature = next(layer.spec[name] for layer in layers if name in layer.feature_names)
        if feature.compression == "pq" and feature.pq_frozen:
            continue  # already a serving table
        if name in trained:
            changed[name] = dataclasses.replace(feature, pq_frozen=True)
            continue
        dims = {layer.embedding_dim for layer in layers if name in layer.feature_names}
        subspaces = num_subspaces if num_subspaces is not None else default_subspaces(min(dims))
        frozen = dataclasses.replace(
            feature, compression="pq", pq_subspaces=subspaces, pq_centroids=num_centroids, pq_frozen=True
        )
        for dim in dims:
            if dim % subspaces:
                raise FeatureSpecError(
                    f"feature {name!r}: pq_subspaces={subspaces} does not divide embedding_dim={dim}"
                )
        changed[name] = frozen
    if not changed:
        return obj
    codes: List[Dict[str, Any]] = []
    for layer in layers:
        found = {}
        for name, feature in changed.items():
            if name not in layer.feature_names:
                continue
            sub = layer._compressed.get(name)
            if isinstance(sub, PQEmbedding):
                found[name] = (sub.assigned_codes(), sub.codebooks.numpy())
            else:
                found[name] = product_quantize(
                    layer.feature_table(name), feature.pq_subspaces, num_centroids, seed=seed, iterations=iterations
                )
        codes.append(found)
    config = _replace_specs(obj.get_config(), changed)
    copy = type(obj).from_config(config)
    if not copy.built and not isinstance(copy, FeatureEmbedding):
        build_config = obj.get_build_config()
        if not build_config:
            raise ValueError(f"quantize_embeddings: {type(obj).__name__} has no build config; call it on a batch first")
        copy.build_from_config(build_config)
    new_layers = _embedding_layers(copy)
    if len(new_layers) != len(layers):
        raise ValueError(f"quantize_embeddings: the copy of {type(obj).__name__} has another layout")
    for new, old, found in zip(new_layers, layers, codes):
        new._copy_embeddings(old, found)
    _copy_other_weights(obj, copy, layers, new_layers)
    return copy


def _copy_other_weights(source, target, source_embeddings, target_embeddings) -> None:
    """Copies every weight outside the ``FeatureEmbedding`` layers, matched in tracking order."""
    skip_source = {id(w) for layer in source_embeddings for w in layer.weights}
    skip_target = {id(w) for layer in target_embeddings for w in layer.weights}
    theirs = [w for w in source.weights if id(w) not in skip_source]
    ours = [w for w in target.weights if id(w) not in skip_target]
    shapes = [tuple(w.shape) for w in theirs], [tuple(w.shape) for w in ours]
    if shapes[0] != shapes[1]:
        raise ValueError(
            f"quantize_embeddings: the copy's weights do not line up with {type(source).__name__}'s "
            f"({len(theirs)} vs {len(ours)} weights outside the embeddings)"
        )
    for mine, original in zip(ours, theirs):
        mine.assign(original)
