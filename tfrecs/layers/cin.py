"""Compressed Interaction Network (CIN) of xDeepFM (Lian et al. 2018).

Layer ``k`` forms every outer product of the previous layer's feature maps ``X^{k-1}``
(``[H_{k-1}, d]``) with the field embeddings ``X^0`` (``[m, d]``), along the embedding
dimension, and compresses the ``H_{k-1} * m`` products into ``H_k`` maps with learned
weights: ``X^k_{h,:} = sum_{i,j} W^k_{h,i,j} X^{k-1}_{i,:} * X^0_{j,:}``. Each layer's maps are
sum-pooled over ``d``; the pooled vectors of all layers are concatenated.

Example::

    cin = CIN(layer_sizes=(200, 200, 200))
    pooled = cin(embeddings)          # [batch, fields, dim] -> [batch, 600]
"""

from typing import Sequence

import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export
from tfrecs.layers.mlp import activation_name


@export("tfrecs.layers.CIN")
class CIN(ConfigFromInit, tf_keras.layers.Layer):
    """Explicit vector-wise feature interactions of bounded degree.

    Args:
        layer_sizes: feature maps ``H_k`` per layer.
        split_half: as in the paper's code, each hidden layer (but the last) sends half its
            maps to the output and half to the next layer (sizes must then be even).
        activation: applied to each layer's maps (the paper uses identity).

    Call args:
        embeddings: ``[batch, fields, dim]``.

    Returns:
        ``[batch, sum of output maps]``.

    Raises:
        ValueError: empty or non-positive sizes, odd sizes with ``split_half``, or a non-rank-3 input.
    """

    def __init__(
        self,
        layer_sizes: Sequence[int] = (200, 200, 200),
        split_half: bool = True,
        activation: str = "linear",
        **kwargs,
    ):
        super().__init__(**kwargs)
        sizes = list(layer_sizes)
        if not sizes or min(sizes) < 1:
            raise ValueError(f"CIN layer_sizes must be non-empty and positive, got {sizes}")
        if split_half and any(size % 2 for size in sizes[:-1]):
            raise ValueError(f"CIN with split_half needs even layer sizes (but the last), got {sizes}")
        self.layer_sizes, self.split_half = sizes, split_half
        self.activation = activation_name(activation)
        self._activation = tf_keras.activations.get(self.activation)

    def build(self, input_shape):
        fields = int(input_shape[1])
        self.kernels, self.biases = [], []
        previous = fields
        for k, size in enumerate(self.layer_sizes):
            self.kernels.append(
                self.add_weight(f"kernel_{k}", shape=(previous * fields, size), initializer="glorot_uniform")
            )
            self.biases.append(self.add_weight(f"bias_{k}", shape=(size,), initializer="zeros"))
            last = k == len(self.layer_sizes) - 1
            previous = size // 2 if self.split_half and not last else size
        super().build(input_shape)

    def output_size(self) -> int:
        """Width of the pooled output."""
        sizes = self.layer_sizes
        return sum(s // 2 for s in sizes[:-1]) + sizes[-1] if self.split_half else sum(sizes)

    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        if embeddings.shape.rank != 3:
            raise ValueError(f"CIN expects [batch, fields, dim] embeddings, got shape {embeddings.shape}")
        x0 = embeddings  # [B, m, d]
        fields, dim = x0.shape[1], tf.shape(x0)[2]
        hidden, pooled = x0, []
        for k, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            # z[b, i, j, d] = hidden[b, i, d] * x0[b, j, d], flattened over (i, j).
            z = tf.einsum("bid,bjd->bdij", hidden, x0)
            z = tf.reshape(z, [-1, dim, hidden.shape[1] * fields])
            maps = self._activation(tf.matmul(z, tf.cast(kernel, z.dtype)) + tf.cast(bias, z.dtype))  # [B, d, H_k]
            maps = tf.transpose(maps, [0, 2, 1])  # [B, H_k, d]
            last = k == len(self.layer_sizes) - 1
            if self.split_half and not last:
                half = self.layer_sizes[k] // 2
                hidden, out = maps[:, :half], maps[:, half:]
            else:
                hidden, out = maps, maps
            pooled.append(tf.reduce_sum(out, axis=2))
        return tf.concat(pooled, axis=1)
