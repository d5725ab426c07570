"""``CTRModel``: what every CTR model of the ranking family shares.

A ``RankingModel`` with one binary task that reads raw features through one
``FeatureEmbedding`` (optionally one column wider: the extra column is each field's
first-order weight, so the linear part costs no extra gather), an optional deep MLP built
from ``hidden_units`` / ``dropout`` / ``l2``, and a check that labels are 0 or 1 before
the loss (``checked_binary_label``, the one in-graph label check of the package).

The constructor options every CTR model accepts beside its own hyper-parameters
(``raw_ids``, ``label_key``, ``check_labels``, ``numeric_as``, ``embeddings_initializer``)
are stored here once and added to every subclass's ``get_config``.

Example::

    class LR(CTRModel):
        linear = True                                  # learn first-order weights

        def __init__(self, spec, features=None, **kwargs):
            super().__init__(spec, features, embedding_dim=0, **kwargs)

        def call(self, features, training=False):
            return self.embed(features)[1]             # [batch, 1] logits
"""

from typing import Any, Dict, Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras

from tfrecs.core.config import config_value
from tfrecs.core.tasks import ranking_task_kind
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.layers.mlp import MLP
from tfrecs.models.base import RankingModel, require_inputs

# CTRModel's own options, accepted by every subclass through **kwargs and kept in its config.
CTR_OPTIONS = ("raw_ids", "label_key", "check_labels", "numeric_as", "embeddings_initializer")


def checked_binary_label(label: tf.Tensor, task_name: str, label_key: str) -> tf.Tensor:
    """``label`` (float32) after an in-graph check that it holds only 0 and 1.

    The check runs in eager and graph mode (XLA drops asserts). The message has no quotes:
    graph-mode errors escape them.

    Raises:
        tf.errors.InvalidArgumentError: at run time, naming the task and its label feature.

    Example::

        checked_binary_label(tf.constant([0.0, 1.0]), "label", "label")
    """
    label = tf.cast(label, tf.float32)
    valid = tf.reduce_all(tf.logical_or(tf.equal(label, 0.0), tf.equal(label, 1.0)))
    check = tf.debugging.assert_equal(
        valid, True, message=f"binary task {task_name}: its labels (feature {label_key}) must hold only 0 and 1"
    )
    with tf.control_dependencies([check]):
        return tf.identity(label)


class CTRModel(RankingModel):
    """Binary-task ranking model over a ``FeatureSpec``'s features.

    Subclasses declare their own hyper-parameters (paper defaults) and pass the shared
    ones here; set the class attribute ``linear = True`` for a first-order part and
    ``deep_output_units = None`` for a deep MLP without its own logit.

    Args:
        spec: fitted ``FeatureSpec`` (or its config dict).
        features: feature names to read (default: all of the spec).
        embedding_dim: embedding size of every field (0 with ``linear``: linear only).
        hidden_units: layers of the deep MLP (``self.deep``; empty: no deep part).
        dropout: dropout of the deep MLP.
        l2: L2 penalty on the deep MLP's kernels.
        raw_ids: ``True``: categorical inputs are raw ids; ``False``: lookup indices as
            ``FeatureSpec.encode`` returns them (data written pre-indexed).
        label_key: feature holding the 0/1 label (default ``"label"``).
        check_labels: check that labels are in {0, 1} (``checked_binary_label``).
        numeric_as: ``"values"`` (default, as DeepCTR and the DCN paper): dense numeric
            features feed the linear part and, via ``deep_input``, the deep part as
            normalised values; ``"embedding"``: they are fields like the others (FM / CIN
            / cross terms included).
        embeddings_initializer: of the fused table; default ``RandomNormal(stddev=1e-4)`` (as
            DeepCTR): rare and unseen ids start near zero instead of adding noise to the
            interaction terms.

    Raises:
        ValueError: ``embedding_dim < 0`` or nothing to embed.
        MissingInputError: at call time, a batch without a feature the model reads.
    """

    linear: bool = False
    deep_output_units: Optional[int] = 1
    default_embedding_stddev: float = 1e-4

    def __init__(
        self,
        spec: FeatureSpec,
        features: Optional[Sequence[str]] = None,
        embedding_dim: int = 10,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        l2: float = 0.0,
        raw_ids: bool = True,
        label_key: str = "label",
        check_labels: bool = True,
        numeric_as: str = "values",
        embeddings_initializer: Any = None,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)  # numeric inputs stay float32 under mixed precision
        super().__init__(label_keys={"label": label_key}, **kwargs)
        if embedding_dim < 0 or (embedding_dim == 0 and not self.linear):
            raise ValueError(f"embedding_dim must be >= 1 (or 0 with a linear part), got {embedding_dim}")
        self.spec = FeatureSpec.coerce(spec)
        self.features = list(features) if features is not None else None
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = tuple(hidden_units)
        self.dropout, self.l2 = float(dropout), float(l2)
        self.raw_ids, self.label_key, self.check_labels = raw_ids, label_key, check_labels
        self.numeric_as, self.embeddings_initializer = numeric_as, embeddings_initializer
        initializer = embeddings_initializer or tf_keras.initializers.RandomNormal(
            stddev=self.default_embedding_stddev, seed=0
        )
        self.embedding = FeatureEmbedding(
            self.spec,
            self.embedding_dim + int(self.linear),
            features=self.features,
            raw_ids=raw_ids,
            embeddings_initializer=initializer,
            numeric_as=numeric_as,
            name="feature_embedding",
        )
        self.bias = self.add_weight("bias", shape=(1,), initializer="zeros") if self.linear else None
        self.num_fields = len(self.embedding.feature_names)
        self.num_numeric = len(self.embedding.numeric_names)
        self.numeric_linear = (
            tf_keras.layers.Dense(1, use_bias=False, dtype="float32", name="numeric_linear")
            if self.linear and self.num_numeric
            else None
        )
        self.deep = (
            MLP(self.hidden_units, dropout=self.dropout, l2=self.l2, output_units=self.deep_output_units)
            if self.hidden_units or self.deep_output_units
            else None
        )

    def get_config(self) -> Dict[str, Any]:
        """The subclass's constructor arguments plus ``CTR_OPTIONS``."""
        config = super().get_config()
        for name in CTR_OPTIONS:
            config.setdefault(name, config_value(getattr(self, name)))
        return config

    def required_inputs(self) -> Sequence[str]:
        """Features a batch must hold for this model."""
        return self.embedding.feature_names + self.embedding.numeric_names

    def embed(self, features) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
        """``([batch, fields, embedding_dim], first-order logit [batch, 1] or None)``."""
        require_inputs(
            type(self).__name__,
            features,
            self.required_inputs(),
            how="Declare it in the FeatureSpec and put its column in the batch.",
        )
        table = self.embedding.stacked(features)
        if not self.linear:
            return table, None
        # A split, not two strided slices: its gradient is one concat, where each slice's
        # gradient (StridedSliceGrad) was a full-size pass of its own (docs/performance.md).
        embeddings, weights = tf.split(table, [self.embedding_dim, 1], axis=2)
        linear = tf.reduce_sum(tf.cast(weights, tf.float32), axis=1)
        if self.numeric_linear is not None:
            linear += self.numeric_linear(self.embedding.numeric_values(features))
        return embeddings, linear + tf.cast(self.bias, tf.float32)

    def deep_input(self, embeddings: tf.Tensor, features) -> tf.Tensor:
        """``[batch, fields * embedding_dim (+ numeric values)]``: the input of deep parts."""
        flat = tf.reshape(embeddings, [-1, self.num_fields * self.embedding_dim])
        if not self.num_numeric:
            return flat
        return tf.concat([flat, tf.cast(self.embedding.numeric_values(features), flat.dtype)], axis=1)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """The ranking loss, after checking binary tasks' labels (``check_labels``)."""
        if self.check_labels:
            _, labels, _ = self._split(inputs)
            for name, label in labels.items():
                if ranking_task_kind(self.ranking_tasks[name]) == "binary":
                    checked_binary_label(label, name, self.label_keys[name])
        return super().compute_loss(inputs, training=training)
