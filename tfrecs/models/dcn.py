"""DCN (Wang et al. 2017) and DCN-v2 (Wang et al. 2021): cross network + deep network.

* ``DCN``: vector cross layers ``x0 * (x . w) + b + x`` (``tfrecs.layers.cross.CrossV1``)
  in parallel with an MLP, concatenated into a logit.
* ``DCNv2``: matrix cross layers ``x0 * (W x + b) + x`` (``tfrs.layers.dcn.Cross``, whose
  matmuls here run in the compute dtype of the policy: ``_Cross``), full
  rank (``projection_dim=None``) or low rank ``W = U V``, with the MLP either stacked on
  the cross output or in parallel.

Example::

    model = DCNv2(spec, projection_dim=64, structure="parallel")
    model.compile(optimizer="adam")
    model.fit(batches)                   # dicts of raw features + "label" in {0, 1}
"""

from typing import Optional, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.cross import CrossV1
from tfrecs.models.ctr_base import CTRModel

STRUCTURES = ("stacked", "parallel")


class _Cross(tfrs.layers.dcn.Cross):
    """``tfrs.layers.dcn.Cross`` whose dense sublayers compute under this layer's dtype policy.

    TFRS 0.7.7 builds them with ``dtype=self.dtype`` (the *variable* dtype), so under
    ``mixed_bfloat16`` / ``mixed_float16`` every cross matmul ran in float32 with casts around
    it (measured: DCN-v2's cross layers took as long in bf16 as in float32, see
    ``docs/performance.md``). Same weights, names and checkpoints as the TFRS layer; under
    float32 nothing changes.
    """

    def build(self, input_shape):
        super().build(input_shape)
        for name in ("_dense", "_dense_u", "_dense_v"):
            dense = getattr(self, name, None)
            if dense is not None and dense.dtype_policy.name != self.dtype_policy.name:
                dense._set_dtype_policy(self.dtype_policy)


class _CrossDeep(CTRModel):
    """Shared body: a cross stack and an MLP, combined stacked or in parallel, then a logit."""

    deep_output_units = None

    def __init__(
        self, spec, features, embedding_dim, num_cross_layers, hidden_units, dropout, l2, structure: str, **kwargs
    ):
        if structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
        if num_cross_layers < 1:
            raise ValueError(f"num_cross_layers must be >= 1, got {num_cross_layers}")
        super().__init__(spec, features, embedding_dim, hidden_units, dropout, l2, **kwargs)
        self.num_cross_layers = int(num_cross_layers)
        self.structure = structure
        self.head = tf_keras.layers.Dense(1, dtype="float32")

    def call(self, features, training: bool = False) -> tf.Tensor:
        embeddings, _ = self.embed(features)
        x0 = self.deep_input(embeddings, features)
        x = x0
        for layer in self.cross_layers:
            x = layer(x0, x)
        if self.structure == "stacked":
            combined = self.deep(x, training=training)
        else:
            combined = tf.concat([x, self.deep(x0, training=training)], axis=1)
        return self.head(combined)


@export("tfrecs.models.DCN", name="dcn")
class DCN(_CrossDeep):
    """DCN: vector cross layers in parallel with an MLP.

    Defaults: the DCN paper's best Criteo setting, 6 cross layers in parallel with 2 deep
    layers of 1024; embedding 16 (the paper sizes each field by ``6 * vocabulary ** 0.25``).

    Args:
        spec: fitted ``FeatureSpec`` (or its config dict).
        features: feature names to read (default: all).
        embedding_dim: embedding size of every field.
        num_cross_layers: cross layers (>= 1).
        hidden_units: the deep MLP's layers.
        dropout: dropout of the deep MLP.
        l2: L2 penalty on the deep MLP's kernels.
        **kwargs: ``CTRModel`` options and Keras ``name``.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        features: Optional[Sequence[str]] = None,
        embedding_dim: int = 16,
        num_cross_layers: int = 6,
        hidden_units: Sequence[int] = (1024, 1024),
        dropout: float = 0.0,
        l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(
            spec, features, embedding_dim, num_cross_layers, hidden_units, dropout, l2, "parallel", **kwargs
        )
        self.cross_layers = [CrossV1(name=f"cross_{i}") for i in range(self.num_cross_layers)]


@export("tfrecs.models.DCNv2", name="dcn_v2")
class DCNv2(_CrossDeep):
    """DCN-v2: ``tfrs.layers.dcn.Cross`` layers (full or low rank), stacked or parallel MLP.

    Defaults, DCN-v2 paper style: 3 full-rank cross layers stacked with an MLP 512-512-512,
    embedding 16.

    Args:
        spec: fitted ``FeatureSpec`` (or its config dict).
        features: feature names to read (default: all).
        embedding_dim: embedding size of every field.
        num_cross_layers: cross layers (>= 1).
        projection_dim: rank of the low-rank cross matrices (None: full rank).
        structure: ``"stacked"`` (MLP on the cross output) or ``"parallel"``.
        hidden_units: the deep MLP's layers.
        dropout: dropout of the deep MLP.
        l2: L2 penalty on the deep MLP's kernels.
        **kwargs: ``CTRModel`` options and Keras ``name``.

    Raises:
        ValueError: unknown ``structure``.
    """

    def __init__(
        self,
        spec: FeatureSpec,
        features: Optional[Sequence[str]] = None,
        embedding_dim: int = 16,
        num_cross_layers: int = 3,
        projection_dim: Optional[int] = None,
        structure: str = "stacked",
        hidden_units: Sequence[int] = (512, 512, 512),
        dropout: float = 0.0,
        l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(
            spec, features, embedding_dim, num_cross_layers, hidden_units, dropout, l2, structure, **kwargs
        )
        self.projection_dim = projection_dim
        self.cross_layers = [
            _Cross(projection_dim=projection_dim, kernel_initializer="glorot_uniform", name=f"cross_{i}")
            for i in range(self.num_cross_layers)
        ]
