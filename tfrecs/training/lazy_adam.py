"""``LazyAdam``: Adam whose sparse (embedding) updates touch only the rows in the batch.

Keras' Adam decays the first and second moments of a whole embedding table every step,
even for a sparse gradient: three full passes over a 100k x 16 x 26 table per batch, which
dominates CTR training time on a CPU (on one fused 2.6M-row table those passes also run
out of cache: 2.5x the time of the same bytes in 26 tables, see
``benchmarks/ctr_throughput.py``). ``LazyAdam`` (as TF1's ``LazyAdamOptimizer`` and
TF Addons' ``LazyAdam``) updates the moments and weights of the rows present in the
batch only; dense variables get exactly Keras' Adam update. Rows absent from a batch keep
their moments instead of decaying them, a known, usually harmless, difference for
embeddings (compare AUC on held-out data when switching).

Example::

    model.compile(optimizer=LazyAdam(learning_rate=1e-3))
"""

import tensorflow as tf
import tf_keras


class LazyAdam(tf_keras.optimizers.Adam):
    """``tf_keras.optimizers.Adam`` with row-sparse updates for ``IndexedSlices`` gradients.

    Args: as ``tf_keras.optimizers.Adam`` (``amsgrad`` is not supported).

    Raises:
        ValueError: ``amsgrad=True``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.amsgrad:
            raise ValueError("LazyAdam does not support amsgrad=True")

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        lr = tf.cast(self.learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
        rows, positions = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))
