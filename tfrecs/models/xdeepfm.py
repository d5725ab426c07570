"""xDeepFM (Lian et al. 2018): linear + CIN (explicit vector-wise crosses) + MLP.

Example::

    model = XDeepFM(spec, XDeepFMHparams(cin_layer_sizes=(100, 100)))
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.cin import CIN
from tfrecs.layers.mlp import MLP
from tfrecs.models.ctr_base import CTRModel
from tfrecs.core.registration import export


@dataclass
class XDeepFMHparams:
    """Paper defaults (Criteo): embedding 10, CIN 200-200-200 (split-half), MLP 400-400."""

    embedding_dim: int = 10
    cin_layer_sizes: Tuple[int, ...] = (200, 200, 200)
    cin_split_half: bool = True
    hidden_units: Tuple[int, ...] = (400, 400)
    dropout: float = 0.5
    l2: float = 0.0


@export("tfrecs.models.XDeepFM", name="xdeepfm")
class XDeepFM(CTRModel):
    """``logit = b + linear + Dense(CIN(V)) + MLP(flatten(V))``.

    Args:
        spec: fitted ``FeatureSpec``.
        hparams: ``XDeepFMHparams`` (default: paper values).
        features: feature names to read (default: all of the spec).
        raw_ids: ``False`` for pre-indexed categorical inputs.
    """

    def __init__(self, spec: FeatureSpec, hparams: Optional[XDeepFMHparams] = None,
                 features: Optional[Sequence[str]] = None, raw_ids: bool = True, **kwargs):
        hparams = hparams or XDeepFMHparams()
        # CIN terms are products of embeddings (gradients ~ e^k): start them away from zero.
        kwargs.setdefault("embeddings_initializer", tf_keras.initializers.RandomNormal(stddev=0.05, seed=0))
        super().__init__(spec, hparams.embedding_dim, features, raw_ids, linear=True, **kwargs)
        self.hparams = hparams
        self.cin = CIN(hparams.cin_layer_sizes, split_half=hparams.cin_split_half)
        self.cin_head = tf_keras.layers.Dense(1, use_bias=False, dtype="float32")
        self.deep = MLP(hparams.hidden_units, dropout=hparams.dropout, l2=hparams.l2, output_units=1)

    def call(self, features, training: bool = False) -> tf.Tensor:
        embeddings, linear = self.embed(features)
        return linear + self.cin_head(self.cin(embeddings)) + self.deep(self.deep_input(embeddings, features), training=training)
