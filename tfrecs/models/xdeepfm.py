"""xDeepFM (Lian et al. 2018): linear + CIN (explicit vector-wise crosses) + MLP.

Example::

    model = XDeepFM(spec, cin_layer_sizes=(100, 100))
    model.compile(optimizer="adam")
    model.fit(batches)                   # dicts of raw features + "label" in {0, 1}
"""

from typing import Optional, Sequence

import tensorflow as tf
import tf_keras

from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.cin import CIN
from tfrecs.models.ctr_base import CTRModel


@export("tfrecs.models.XDeepFM", name="xdeepfm")
class XDeepFM(CTRModel):
    """``logit = b + linear + Dense(CIN(V)) + MLP(flatten(V))``.

    Defaults are the paper's (Criteo): embedding 10, CIN 200-200-200 (split-half), MLP
    400-400, dropout 0.5. The fused table starts at ``RandomNormal(stddev=0.05)``: CIN terms
    are products of embeddings (gradients ~ e^k), so they start away from zero.

    Args:
        spec: fitted ``FeatureSpec`` (or its config dict).
        features: feature names to read (default: all of the spec).
        embedding_dim: embedding size of every field.
        cin_layer_sizes: feature maps of each CIN layer.
        cin_split_half: CIN's split-half connection (half of each layer to the output).
        hidden_units: the deep MLP's layers (then one logit).
        dropout: dropout of the deep MLP.
        l2: L2 penalty on the deep MLP's kernels.
        **kwargs: ``CTRModel`` options and Keras ``name``.
    """

    linear = True
    default_embedding_stddev = 0.05

    def __init__(
        self,
        spec: FeatureSpec,
        features: Optional[Sequence[str]] = None,
        embedding_dim: int = 10,
        cin_layer_sizes: Sequence[int] = (200, 200, 200),
        cin_split_half: bool = True,
        hidden_units: Sequence[int] = (400, 400),
        dropout: float = 0.5,
        l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(spec, features, embedding_dim, hidden_units, dropout, l2, **kwargs)
        self.cin_layer_sizes = tuple(cin_layer_sizes)
        self.cin_split_half = cin_split_half
        self.cin = CIN(self.cin_layer_sizes, split_half=cin_split_half)
        self.cin_head = tf_keras.layers.Dense(1, use_bias=False, dtype="float32")

    def call(self, features, training: bool = False) -> tf.Tensor:
        embeddings, linear = self.embed(features)
        deep_input = self.deep_input(embeddings, features)
        return linear + self.cin_head(self.cin(embeddings)) + self.deep(deep_input, training=training)
