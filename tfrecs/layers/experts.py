"""Mixture of experts with one softmax gate per task: MMoE's shared layer (Ma et al., 2018).

``num_experts`` MLPs read the same input; each task's gate (a linear layer + softmax over
experts) mixes the experts' outputs into that task's input, so tasks share experts as much
as helps them.

Example::

    moe = MixtureOfExperts(num_experts=4, expert_units=(64,), task_names=("like", "rating"))
    per_task = moe(x)              # {"like": [B, 64], "rating": [B, 64]}
    gates = moe.gates(x)           # {"like": [B, 4], ...}, each row sums to 1
"""

from typing import Dict, Optional, Sequence

import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export
from tfrecs.layers.mlp import MLP, activation_name


@export("tfrecs.layers.MixtureOfExperts")
class MixtureOfExperts(ConfigFromInit, tf_keras.layers.Layer):
    """Shared experts, mixed per task by softmax gates.

    Args:
        num_experts: number of expert MLPs (>= 1).
        expert_units: hidden layers of each expert; its output size is the last entry.
        task_names: one gate per name.
        activation: activation of the experts.
        dropout: dropout inside the experts.

    Call returns:
        ``{task: [B, expert_units[-1]]}``; ``gates(x)`` returns ``{task: [B, num_experts]}``.

    Raises:
        ValueError: no experts, no expert layers, or no task names.
    """

    def __init__(
        self,
        num_experts: int,
        expert_units: Sequence[int],
        task_names: Sequence[str],
        activation: str = "relu",
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        if not expert_units:
            raise ValueError("expert_units must name at least one layer size")
        if not task_names:
            raise ValueError("task_names must name at least one task")
        self.num_experts = int(num_experts)
        self.expert_units = tuple(int(units) for units in expert_units)
        self.task_names = tuple(task_names)
        self.activation = activation_name(activation)
        self.dropout = float(dropout)
        self.experts = [
            MLP(self.expert_units, activation=self.activation, dropout=dropout, name=f"expert_{i}")
            for i in range(num_experts)
        ]
        self.gate_layers = {name: tf_keras.layers.Dense(num_experts, name=f"gate_{name}") for name in self.task_names}

    def gates(self, inputs: tf.Tensor) -> Dict[str, tf.Tensor]:
        """``{task: [B, num_experts]}`` float32 softmax weights (rows sum to 1)."""
        return {
            name: tf.nn.softmax(tf.cast(layer(inputs), tf.float32), axis=-1) for name, layer in self.gate_layers.items()
        }

    def call(self, inputs: tf.Tensor, training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
        experts = tf.stack([expert(inputs, training=training) for expert in self.experts], axis=1)  # [B, E, u]
        return {
            name: tf.einsum("be,beu->bu", tf.cast(gate, experts.dtype), experts)
            for name, gate in self.gates(inputs).items()
        }
