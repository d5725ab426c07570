"""CTR interaction layers: FM equals the explicit pairwise sum, CIN shapes and a hand-computed value, DCN cross."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.layers.cin import CIN
from tfrecs.layers.cross import CrossV1
from tfrecs.layers.fm import FMInteraction


def test_fm_interaction_equals_the_explicit_pairwise_sum():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 7, 4)).astype(np.float32)
    explicit = np.zeros((5, 4), dtype=np.float64)
    for i, j in itertools.combinations(range(7), 2):
        explicit += v[:, i] * v[:, j]
    np.testing.assert_allclose(FMInteraction(reduce_sum=False)(tf.constant(v)).numpy(), explicit, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        FMInteraction()(tf.constant(v)).numpy()[:, 0], explicit.sum(axis=1), rtol=1e-4, atol=1e-4
    )


def test_fm_rejects_a_flat_input():
    with pytest.raises(ValueError, match="batch, fields, dim"):
        FMInteraction()(tf.zeros([2, 3]))


def test_cin_output_shapes():
    x = tf.random.normal([3, 5, 4])
    assert CIN((6, 4, 2), split_half=True)(x).shape == (3, 3 + 2 + 2)
    assert CIN((6, 4, 2), split_half=True).output_size() == 7
    assert CIN((6, 5), split_half=False)(x).shape == (3, 11)
    with pytest.raises(ValueError, match="even layer sizes"):
        CIN((5, 4), split_half=True)


def test_cin_hand_checked_value():
    # Two fields, dim 2: x0 = [[1, 2], [3, 4]]. One layer, one map, kernel over the flattened
    # (i, j) products [x_0*x_0, x_0*x_1, x_1*x_0, x_1*x_1] = weights [1, 2, 3, 4].
    cin = CIN((1,), split_half=False)
    x0 = tf.constant([[[1.0, 2.0], [3.0, 4.0]]])
    cin(x0)
    cin.kernels[0].assign([[1.0], [2.0], [3.0], [4.0]])
    # dim 0: 1 + 2*3 + 3*3 + 4*9 = 52; dim 1: 4 + 2*8 + 3*8 + 4*16 = 108; sum-pooled over dim.
    assert cin(x0).numpy().tolist() == [[160.0]]


def test_dcn_v1_cross_layer_value():
    layer = CrossV1()
    x0 = tf.constant([[1.0, 2.0]])
    layer(x0)
    layer.kernel.assign([[0.5], [1.0]])
    layer.bias.assign([0.1, 0.2])
    # x0 * (x0 . w) + b + x0 = [1, 2] * 2.5 + [0.1, 0.2] + [1, 2]
    np.testing.assert_allclose(layer(x0).numpy(), [[3.6, 7.2]], rtol=1e-6)
