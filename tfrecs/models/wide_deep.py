"""Wide & Deep (Cheng et al. 2016): a linear model over ids and crossed ids + an MLP.

The wide part is a first-order weight per id (and per numeric field) plus one weight per
*crossed* value: each pair of categorical fields in ``crosses`` is combined into one id
``hash(pair, id_a, id_b) mod cross_buckets`` (the paper's cross-product transformation,
hashed into one shared table). The deep part is an MLP over the field embeddings.

Example::

    model = WideDeep(spec, crosses=[("user_id", "item_id")])
    model.compile(optimizer="adam")
    model.fit(batches)                   # dicts of raw features + "label" in {0, 1}
"""

import itertools
from typing import Optional, Sequence

import tensorflow as tf
import tf_keras

from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.models.ctr_base import CTRModel

_MULTIPLIERS = (1_000_003, 998_244_353, 2_147_483_647)


@export("tfrecs.models.WideDeep", name="wide_deep")
class WideDeep(CTRModel):
    """``logit = wide(ids, crossed ids) + MLP(flatten(V))``.

    Defaults are the paper's: embedding 32, MLP 1024-512-256 with ReLU; crosses: every pair
    of categorical features, hashed into ``cross_buckets`` weights.

    Args:
        spec: fitted ``FeatureSpec`` (or its config dict).
        features: feature names to read (default: all).
        embedding_dim: embedding size of every field.
        hidden_units: the deep MLP's layers (then one logit).
        dropout: dropout of the deep MLP.
        l2: L2 penalty on the deep MLP's kernels.
        crosses: pairs of categorical features to cross (default None: every pair).
        cross_buckets: size of the shared table of crossed-value weights.
        **kwargs: ``CTRModel`` options and Keras ``name``.

    Raises:
        ValueError: a cross names a feature that is not a categorical feature of the model.
    """

    linear = True

    def __init__(
        self,
        spec: FeatureSpec,
        features: Optional[Sequence[str]] = None,
        embedding_dim: int = 32,
        hidden_units: Sequence[int] = (1024, 512, 256),
        dropout: float = 0.0,
        l2: float = 0.0,
        crosses: Optional[Sequence[Sequence[str]]] = None,
        cross_buckets: int = 100_000,
        **kwargs,
    ):
        super().__init__(spec, features, embedding_dim, hidden_units, dropout, l2, **kwargs)
        categorical = [n for n in self.embedding.feature_names if self.spec[n].kind == "categorical"]
        crosses = crosses if crosses is not None else tuple(itertools.combinations(categorical, 2))
        for pair in crosses:
            bad = [n for n in pair if n not in categorical]
            if len(pair) != 2 or bad:
                raise ValueError(
                    f"WideDeep cross {tuple(pair)!r}: crosses are pairs of the model's categorical "
                    f"features {categorical}; not valid: {bad or pair}"
                )
        self.crosses = tuple(tuple(pair) for pair in crosses)
        self.cross_buckets = int(cross_buckets)
        self.cross_weights = (
            tf_keras.layers.Embedding(
                self.cross_buckets, 1, embeddings_initializer="zeros", dtype="float32", name="cross_weights"
            )
            if self.crosses
            else None
        )

    def crossed_ids(self, features) -> tf.Tensor:
        """``[batch, num_crosses]`` hashed crossed-value ids in ``[0, cross_buckets)``."""
        a, b, c = _MULTIPLIERS
        columns = []
        for k, (left, right) in enumerate(self.crosses):
            i = self.embedding._indices(left, features[left])
            j = self.embedding._indices(right, features[right])
            columns.append(tf.math.floormod(i * a + j * b + (k + 1) * c, self.cross_buckets))
        return tf.stack(columns, axis=1)

    def call(self, features, training: bool = False) -> tf.Tensor:
        embeddings, wide = self.embed(features)
        if self.cross_weights is not None:
            wide = wide + tf.reduce_sum(self.cross_weights(self.crossed_ids(features)), axis=1)
        return wide + self.deep(self.deep_input(embeddings, features), training=training)
