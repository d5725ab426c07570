"""DeepFM (Guo et al. 2017): linear + FM second-order + MLP over shared field embeddings.

Example::

    model = DeepFM(spec, DeepFMHparams(embedding_dim=10))
    logits = model(batch)                 # [batch, 1], float32
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import tensorflow as tf

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.fm import FMInteraction
from tfrecs.layers.mlp import MLP
from tfrecs.models.ctr_base import CTRModel
from tfrecs.core.registration import export


@dataclass
class DeepFMHparams:
    """Paper defaults (Criteo): embedding 10, MLP 400-400-400 with ReLU, dropout 0.5."""

    embedding_dim: int = 10
    hidden_units: Tuple[int, ...] = (400, 400, 400)
    dropout: float = 0.5
    l2: float = 0.0


@export("tfrecs.models.DeepFM", name="deepfm")
class DeepFM(CTRModel):
    """``logit = b + sum_i w_i x_i + sum_{i<j} <v_i, v_j> + MLP([v_1 .. v_F])``.

    Args:
        spec: fitted ``FeatureSpec``.
        hparams: ``DeepFMHparams`` (default: paper values).
        features: feature names to read (default: all of the spec).
        raw_ids: ``False`` for pre-indexed categorical inputs.
    """

    def __init__(self, spec: FeatureSpec, hparams: Optional[DeepFMHparams] = None,
                 features: Optional[Sequence[str]] = None, raw_ids: bool = True, **kwargs):
        hparams = hparams or DeepFMHparams()
        super().__init__(spec, hparams.embedding_dim, features, raw_ids, linear=True, **kwargs)
        self.hparams = hparams
        self.fm = FMInteraction()
        self.deep = MLP(hparams.hidden_units, dropout=hparams.dropout, l2=hparams.l2, output_units=1)

    def call(self, features, training: bool = False) -> tf.Tensor:
        embeddings, linear = self.embed(features)
        return linear + tf.cast(self.fm(embeddings), tf.float32) + self.deep(self.deep_input(embeddings, features), training=training)
