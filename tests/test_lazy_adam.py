"""LazyAdam: Adam on dense gradients; row-sparse updates that leave absent rows alone."""

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.training import make_optimizer
from tfrecs.training.lazy_adam import LazyAdam


def _step(optimizer, table, rows, grads):
    optimizer.apply_gradients(
        [(tf.IndexedSlices(tf.constant(grads), tf.constant(rows), tf.constant(table.shape)), table)]
    )


def test_first_sparse_step_equals_adam_and_absent_rows_keep_their_values():
    start = np.arange(12, dtype=np.float32).reshape(4, 3)
    grads = np.array([[1.0, -2.0, 0.5], [0.1, 0.2, -0.3]], dtype=np.float32)
    lazy, dense = tf.Variable(start), tf.Variable(start)
    _step(LazyAdam(learning_rate=0.1), lazy, [0, 2], grads)
    _step(tf_keras.optimizers.Adam(learning_rate=0.1), dense, [0, 2], grads)
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(lazy.numpy()[[1, 3]], start[[1, 3]])


def test_moments_of_absent_rows_are_not_decayed():
    table = tf.Variable(np.ones((3, 2), dtype=np.float32))
    optimizer = LazyAdam(learning_rate=0.01)
    _step(optimizer, table, [0, 1], np.ones((2, 2), dtype=np.float32))
    moments = [v for v in optimizer.variables() if v.shape == table.shape]
    before = [m.numpy()[1].copy() for m in moments]
    _step(optimizer, table, [0], np.ones((1, 2), dtype=np.float32))  # row 1 absent
    after = [m.numpy()[1] for m in moments]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_dense_gradients_follow_keras_adam_and_the_name_is_registered():
    start = np.array([1.0, -1.0], dtype=np.float32)
    lazy, dense = tf.Variable(start), tf.Variable(start)
    lazy_opt, adam = make_optimizer("lazy_adam", learning_rate=0.05), tf_keras.optimizers.Adam(learning_rate=0.05)
    assert isinstance(lazy_opt, LazyAdam)
    for gradient in ([0.3, -0.2], [0.1, 0.4], [-0.5, 0.0]):
        lazy_opt.apply_gradients([(tf.constant(gradient), lazy)])
        adam.apply_gradients([(tf.constant(gradient), dense)])
    np.testing.assert_allclose(lazy.numpy(), dense.numpy(), rtol=1e-6)


def test_duplicate_rows_are_summed_like_adam_on_the_dense_gradient():
    """Rows repeated in a batch (one id in several examples) update once, with their summed gradient."""
    start = np.arange(12, dtype=np.float32).reshape(4, 3)
    grads = np.array([[1.0, -2.0, 0.5], [0.1, 0.2, -0.3], [0.4, 0.0, 1.0]], dtype=np.float32)
    lazy, dense = tf.Variable(start), tf.Variable(start)
    lazy_opt, adam = LazyAdam(learning_rate=0.1), tf_keras.optimizers.Adam(learning_rate=0.1)
    for _ in range(2):
        _step(lazy_opt, lazy, [2, 0, 2], grads)
        summed = np.zeros_like(start)
        np.add.at(summed, [2, 0, 2], grads)
        adam.apply_gradients([(tf.constant(summed), dense)])
    # Rows 0 and 2 present in both steps: identical to Adam on the summed dense gradient.
    np.testing.assert_allclose(lazy.numpy()[[0, 2]], dense.numpy()[[0, 2]], rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(lazy.numpy()[[1, 3]], start[[1, 3]])
