"""MLP layer and the shared recipe scoring helpers."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.layers.mlp import MLP
from tfrecs.recipes.retrieval_common import factorized_score_fn, history_seconds_per_epoch


def test_mlp_shapes_head_dtype_and_dropout_only_in_training():
    mlp = MLP([8, 4], dropout=0.5, output_units=1)
    x = tf.ones([3, 5])
    assert mlp(x).shape == (3, 1) and mlp(x).dtype == tf.float32
    np.testing.assert_allclose(mlp(x, training=False).numpy(), mlp(x, training=False).numpy())
    assert len(mlp.trainable_variables) == 6  # 3 kernels + 3 biases
    with pytest.raises(ValueError, match="dropout must be in"):
        MLP([4], dropout=1.0)
    with pytest.raises(ValueError, match="MLP layer sizes must be >= 1"):
        MLP([0])


def test_mlp_computes_relu_layers_by_hand():
    mlp = MLP([2], output_units=1)
    x = tf.constant([[1.0, -2.0]])
    mlp(x)
    k1, b1 = mlp.hidden_layers[0].kernel.numpy(), mlp.hidden_layers[0].bias.numpy()
    k2, b2 = mlp.head.kernel.numpy(), mlp.head.bias.numpy()
    expected = np.maximum(x.numpy() @ k1 + b1, 0) @ k2 + b2
    np.testing.assert_allclose(mlp(x).numpy(), expected, rtol=1e-6)


def test_factorized_scores_are_dot_products_in_catalogue_order():
    users = np.array([[1.0, 0.0], [0.0, 2.0]])
    items = np.array([[1.0, 1.0], [3.0, 0.0], [0.0, -1.0]])
    scores = factorized_score_fn(users, items)(tf.constant([1, 0])).numpy()
    np.testing.assert_allclose(scores, [[2.0, 0.0, -2.0], [1.0, 3.0, 0.0]])
    with pytest.raises(ValueError, match="differ in size: 2 vs 3"):
        factorized_score_fn(users, np.ones((4, 3)))
    assert history_seconds_per_epoch([10.0, 2.0, 4.0]) == 3.0 and history_seconds_per_epoch([5.0]) == 5.0
