"""DeepFM (Guo et al. 2017): linear + FM second-order + MLP over shared field embeddings.

Example::

    model = DeepFM(spec, embedding_dim=10, hidden_units=(400, 400, 400))
    model.compile(optimizer="adam")
    model.fit(batches)                   # dicts of raw features + "label" in {0, 1}
    model.predict(batches)               # [batch, 1] click probabilities
"""

from typing import Optional, Sequence

import tensorflow as tf

from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.fm import FMInteraction
from tfrecs.models.ctr_base import CTRModel


@export("tfrecs.models.DeepFM", name="deepfm")
class DeepFM(CTRModel):
    """``logit = b + sum_i w_i x_i + sum_{i<j} <v_i, v_j> + MLP([v_1 .. v_F])``.

    Defaults are the paper's (Criteo): embedding 10, MLP 400-400-400 with ReLU, dropout 0.5.

    Args:
        spec: fitted ``FeatureSpec`` (or its config dict).
        features: feature names to read (default: all of the spec).
        embedding_dim: embedding size of every field.
        hidden_units: the deep MLP's layers (then one logit).
        dropout: dropout of the deep MLP.
        l2: L2 penalty on the deep MLP's kernels.
        **kwargs: ``CTRModel`` options (``raw_ids``, ``label_key``, ``check_labels``,
            ``numeric_as``, ``embeddings_initializer``) and Keras ``name``.
    """

    linear = True

    def __init__(
        self,
        spec: FeatureSpec,
        features: Optional[Sequence[str]] = None,
        embedding_dim: int = 10,
        hidden_units: Sequence[int] = (400, 400, 400),
        dropout: float = 0.5,
        l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(spec, features, embedding_dim, hidden_units, dropout, l2, **kwargs)
        self.fm = FMInteraction()

    def call(self, features, training: bool = False) -> tf.Tensor:
        embeddings, linear = self.embed(features)
        deep_input = self.deep_input(embeddings, features)
        return linear + tf.cast(self.fm(embeddings), tf.float32) + self.deep(deep_input, training=training)
