"""DCN (Wang et al. 2017) and DCN-v2 (Wang et al. 2021): cross network + deep network.

* ``DCN``: vector cross layers ``x0 * (x . w) + b + x`` (``tfrecs.layers.cross.CrossV1``)
  in parallel with an MLP, concatenated into a logit.
* ``DCNv2``: matrix cross layers ``x0 * (W x + b) + x`` (``tfrs.layers.dcn.Cross``), full
  rank (``projection_dim=None``) or low rank ``W = U V``, with the MLP either stacked on
  the cross output or in parallel.

Example::

    model = DCNv2(spec, DCNv2Hparams(projection_dim=64, structure="parallel"))
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.cross import CrossV1
from tfrecs.layers.mlp import MLP
from tfrecs.models.ctr_base import CTRModel
from tfrecs.core.registration import export

STRUCTURES = ("stacked", "parallel")


@dataclass
class DCNHparams:
    """DCN paper (Criteo best setting): 6 cross layers in parallel with 2 deep layers of 1024;
    embedding 16 (the paper sizes each field by ``6 * vocabulary ** 0.25``)."""

    embedding_dim: int = 16
    num_cross_layers: int = 6
    hidden_units: Tuple[int, ...] = (1024, 1024)
    dropout: float = 0.0
    l2: float = 0.0


@dataclass
class DCNv2Hparams:
    """DCN-v2 paper style: 3 full-rank cross layers (``projection_dim`` = rank for the
    low-rank DCN-Mix-free variant), stacked with an MLP; MLP 512-512-512, embedding 16."""

    embedding_dim: int = 16
    num_cross_layers: int = 3
    projection_dim: Optional[int] = None
    structure: str = "stacked"
    hidden_units: Tuple[int, ...] = (512, 512, 512)
    dropout: float = 0.0
    l2: float = 0.0


class _CrossDeep(CTRModel):
    """Shared body: a cross stack and an MLP, combined stacked or in parallel."""

    def __init__(self, spec, hparams, features, raw_ids, structure: str, **kwargs):
        if structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
        if hparams.num_cross_layers < 1:
            raise ValueError(f"num_cross_layers must be >= 1, got {hparams.num_cross_layers}")
        super().__init__(spec, hparams.embedding_dim, features, raw_ids, linear=False, **kwargs)
        self.hparams, self.structure = hparams, structure
        self.deep = MLP(hparams.hidden_units, dropout=hparams.dropout, l2=hparams.l2)
        self.head = tf_keras.layers.Dense(1, dtype="float32")

    def call(self, features, training: bool = False) -> tf.Tensor:
        embeddings, _ = self.embed(features)
        x0 = self.deep_input(embeddings, features)
        x = x0
        for layer in self.crosses:
            x = layer(x0, x)
        if self.structure == "stacked":
            combined = self.deep(x, training=training)
        else:
            combined = tf.concat([x, self.deep(x0, training=training)], axis=1)
        return self.head(combined)


@export("tfrecs.models.DCN", name="dcn")
class DCN(_CrossDeep):
    """DCN: vector cross layers in parallel with an MLP.

    Args:
        spec: fitted ``FeatureSpec``.
        hparams: ``DCNHparams``.
        features: feature names to read (default: all).
        raw_ids: ``False`` for pre-indexed categorical inputs.
    """

    def __init__(self, spec: FeatureSpec, hparams: Optional[DCNHparams] = None,
                 features: Optional[Sequence[str]] = None, raw_ids: bool = True, **kwargs):
        hparams = hparams or DCNHparams()
        super().__init__(spec, hparams, features, raw_ids, "parallel", **kwargs)
        self.crosses = [CrossV1(name=f"cross_{i}") for i in range(hparams.num_cross_layers)]


@export("tfrecs.models.DCNv2", name="dcn_v2")
class DCNv2(_CrossDeep):
    """DCN-v2: ``tfrs.layers.dcn.Cross`` layers (full or low rank), stacked or parallel MLP.

    Args:
        spec: fitted ``FeatureSpec``.
        hparams: ``DCNv2Hparams`` (``projection_dim`` None = full rank).
        features: feature names to read (default: all).
        raw_ids: ``False`` for pre-indexed categorical inputs.

    Raises:
        ValueError: unknown ``structure``.
    """

    def __init__(self, spec: FeatureSpec, hparams: Optional[DCNv2Hparams] = None,
                 features: Optional[Sequence[str]] = None, raw_ids: bool = True, **kwargs):
        hparams = hparams or DCNv2Hparams()
        super().__init__(spec, hparams, features, raw_ids, hparams.structure, **kwargs)
        self.crosses = [tfrs.layers.dcn.Cross(projection_dim=hparams.projection_dim, kernel_initializer="glorot_uniform",
                                              name=f"cross_{i}") for i in range(hparams.num_cross_layers)]
