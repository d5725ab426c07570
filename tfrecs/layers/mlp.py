"""The multi-layer perceptron every deep part of every model uses.

Example::

    mlp = MLP([400, 400, 400], dropout=0.1)           # hidden stack, ReLU
    logits = MLP([64, 32], output_units=1)(x)          # stack + linear output layer
"""

from typing import Callable, Optional, Sequence, Union

import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export


def activation_name(activation: Union[str, Callable, None]) -> Union[str, dict]:
    """``activation`` in the form a config keeps: a name (``"relu"``) or Keras' serialised dict.

    Example::

        activation_name(tf_keras.activations.relu)   # "relu"
    """
    if activation is None or isinstance(activation, str):
        return activation or "linear"
    return tf_keras.activations.serialize(activation)


@export("tfrecs.layers.MLP")
class MLP(ConfigFromInit, tf_keras.layers.Layer):
    """Dense layers with an activation, optional batch norm and dropout, optional linear head.

    Args:
        hidden_units: sizes of the hidden layers (may be empty).
        activation: activation of hidden layers.
        dropout: dropout rate after each hidden layer (0 disables).
        batch_norm: batch normalisation before each hidden activation.
        output_units: size of a final linear layer (None: no head).
        l2: L2 penalty on every kernel.
        output_dtype: dtype of the head's output; ``"float32"`` keeps logits float32 under
            mixed precision.

    Raises:
        ValueError: a non-positive layer size or a dropout outside [0, 1).

    Example::

        mlp = MLP((64, 32), dropout=0.1, output_units=1)
        logits = mlp(x, training=True)                  # [batch, 1] float32
        MLP.from_config(mlp.get_config()).hidden_units   # (64, 32)
    """

    def __init__(
        self,
        hidden_units: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        output_units: Optional[int] = None,
        l2: float = 0.0,
        output_dtype: Optional[str] = "float32",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if any(units < 1 for units in hidden_units) or (output_units is not None and output_units < 1):
            raise ValueError(
                f"MLP layer sizes must be >= 1, got hidden_units={list(hidden_units)}, output_units={output_units}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        regularizer = tf_keras.regularizers.l2(l2) if l2 else None
        self.hidden_units = tuple(int(units) for units in hidden_units)
        self.activation = activation_name(activation)
        self.dropout, self.batch_norm, self.l2 = float(dropout), bool(batch_norm), float(l2)
        self.output_units, self.output_dtype = output_units, output_dtype
        # One flat list (Dense [, BatchNorm], Activation [, Dropout] per hidden layer): Keras'
        # ``.keras`` format saves the weights of layers in lists, not in lists of lists.
        self.hidden_layers = []
        for units in hidden_units:
            self.hidden_layers.append(
                tf_keras.layers.Dense(units, use_bias=not batch_norm, kernel_regularizer=regularizer)
            )
            if batch_norm:
                self.hidden_layers.append(tf_keras.layers.BatchNormalization())
            self.hidden_layers.append(tf_keras.layers.Activation(self.activation))
            if dropout:
                self.hidden_layers.append(tf_keras.layers.Dropout(dropout))
        self.head = None
        if output_units is not None:
            self.head = tf_keras.layers.Dense(output_units, kernel_regularizer=regularizer, dtype=output_dtype)

    def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
        x = inputs
        for layer in self.hidden_layers:
            x = (
                layer(x, training=training)
                if isinstance(layer, (tf_keras.layers.Dropout, tf_keras.layers.BatchNormalization))
                else layer(x)
            )
        return self.head(x) if self.head is not None else x
