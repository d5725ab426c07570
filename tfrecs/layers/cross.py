"""Cross layers of DCN: the original vector form (DCN, Wang et al. 2017).

DCN-v2's full-rank and low-rank cross layers are ``tfrs.layers.dcn.Cross`` (with
``projection_dim=None`` or a rank); this module only adds DCN's first cross layer, whose
weight is a vector: ``x_{l+1} = x_0 * (x_l . w) + b + x_l``.

Example::

    x = CrossV1()(x0, x0)      # [batch, width] -> [batch, width]
"""

from typing import Optional

import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export


@export("tfrecs.layers.CrossV1")
class CrossV1(ConfigFromInit, tf_keras.layers.Layer):
    """``x0 * (x . w) + b + x`` with a weight vector ``w`` and bias ``b`` of the input width.

    No hyper-parameters: the weights take the input's width when the layer is built.

    Call args:
        x0: ``[batch, width]`` the stacked input of the cross network.
        x: ``[batch, width]`` the previous cross layer's output (default ``x0``).

    Example::

        cross = CrossV1()
        x1 = cross(x0)           # first layer: x = x0
        x2 = CrossV1()(x0, x1)
    """

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.kernel = self.add_weight("kernel", shape=(width, 1), initializer="glorot_uniform")
        self.bias = self.add_weight("bias", shape=(width,), initializer="zeros")
        super().build(input_shape)

    def call(self, x0: tf.Tensor, x: Optional[tf.Tensor] = None) -> tf.Tensor:
        x = x0 if x is None else x
        return x0 * tf.matmul(x, tf.cast(self.kernel, x.dtype)) + tf.cast(self.bias, x.dtype) + x
