"""Wide & Deep (Cheng et al. 2016): a linear model over ids and crossed ids + an MLP.

The wide part is a first-order weight per id (and per numeric field) plus one weight per
*crossed* value: each pair of categorical fields in ``crosses`` is combined into one id
``hash(pair, id_a, id_b) mod cross_buckets`` (the paper's cross-product transformation,
hashed into one shared table). The deep part is an MLP over the field embeddings.

Example::

    model = WideDeep(spec, WideDeepHparams(crosses=(("user_id", "item_id"),)))
"""
import itertools
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.mlp import MLP
from tfrecs.models.ctr_base import CTRModel
from tfrecs.core.registration import export

_MULTIPLIERS = (1_000_003, 998_244_353, 2_147_483_647)


@dataclass
class WideDeepHparams:
    """Paper defaults: embedding 32, MLP 1024-512-256 with ReLU; crosses: every pair of
    categorical features (None) hashed into ``cross_buckets`` weights."""

    embedding_dim: int = 32
    hidden_units: Tuple[int, ...] = (1024, 512, 256)
    dropout: float = 0.0
    l2: float = 0.0
    crosses: Optional[Tuple[Tuple[str, str], ...]] = None
    cross_buckets: int = 100_000


@export("tfrecs.models.WideDeep", name="wide_deep")
class WideDeep(CTRModel):
    """``logit = wide(ids, crossed ids) + MLP(flatten(V))``.

    Args:
        spec: fitted ``FeatureSpec``.
        hparams: ``WideDeepHparams``.
        features: feature names to read (default: all).
        raw_ids: ``False`` for pre-indexed categorical inputs.

    Raises:
        ValueError: a cross names a feature that is not a categorical feature of the model.
    """

    def __init__(self, spec: FeatureSpec, hparams: Optional[WideDeepHparams] = None,
                 features: Optional[Sequence[str]] = None, raw_ids: bool = True, **kwargs):
        hparams = hparams or WideDeepHparams()
        super().__init__(spec, hparams.embedding_dim, features, raw_ids, linear=True, **kwargs)
        self.hparams = hparams
        categorical = [n for n in self.embedding.feature_names if spec[n].kind == "categorical"]
        crosses = hparams.crosses if hparams.crosses is not None else tuple(itertools.combinations(categorical, 2))
        for pair in crosses:
            bad = [n for n in pair if n not in categorical]
            if len(pair) != 2 or bad:
                raise ValueError(f"WideDeep cross {tuple(pair)!r}: crosses are pairs of the model's categorical "
                                 f"features {categorical}; not valid: {bad or pair}")
        self.crosses = tuple(tuple(pair) for pair in crosses)
        self.cross_weights = tf_keras.layers.Embedding(hparams.cross_buckets, 1, embeddings_initializer="zeros",
                                                       dtype="float32", name="cross_weights") if self.crosses else None
        self.deep = MLP(hparams.hidden_units, dropout=hparams.dropout, l2=hparams.l2, output_units=1)

    def crossed_ids(self, features) -> tf.Tensor:
        """``[batch, num_crosses]`` hashed crossed-value ids in ``[0, cross_buckets)``."""
        a, b, c = _MULTIPLIERS
        columns = []
        for k, (left, right) in enumerate(self.crosses):
            i = self.embedding._indices(left, features[left])
            j = self.embedding._indices(right, features[right])
            columns.append(tf.math.floormod(i * a + j * b + (k + 1) * c, self.hparams.cross_buckets))
        return tf.stack(columns, axis=1)

    def call(self, features, training: bool = False) -> tf.Tensor:
        embeddings, wide = self.embed(features)
        if self.cross_weights is not None:
            wide = wide + tf.reduce_sum(self.cross_weights(self.crossed_ids(features)), axis=1)
        return wide + self.deep(self.deep_input(embeddings, features), training=training)
