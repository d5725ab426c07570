"""``LazyAdam``: Adam whose sparse (embedding) updates touch only the rows in the batch.

Keras' Adam decays the first and second moments of a whole embedding table every step,
even for a sparse gradient: three full passes over a 100k x 16 x 26 table per batch, which
dominates CTR training time on a CPU (on one fused 2.6M-row table those passes also run
out of cache: 2.5x the time of the same bytes in 26 tables, see
``benchmarks/ctr_throughput.py``). ``LazyAdam`` (as TF1's ``LazyAdamOptimizer`` and
TF Addons' ``LazyAdam``) updates the moments and weights of the rows present in the
batch only; dense variables get Keras' Adam update (its formula, as TensorFlow's fused
``ResourceApplyAdam`` kernel). Sparse rows arrive summed per index (``apply_gradients``
deduplicates them), so each step is gathers and row copies (``scatter_update``). Rows absent from a batch keep
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

    def _deduplicate_sparse_grad(self, grads):
        """Keras' summing of duplicate rows, on int32 indices when the table allows it.

        ``tf.unique`` and ``unsorted_segment_sum`` on int32 indices take about half the time
        of int64 ones on CPU (measured in ``docs/performance.md``); the rows are the same.
        """
        processed = []
        for grad in grads:
            if isinstance(grad, tf.IndexedSlices) and grad.indices.dtype == tf.int64 and _fits_int32(grad):
                grad = tf.IndexedSlices(grad.values, tf.cast(grad.indices, tf.int32), grad.dense_shape)
            processed.append(grad)
        return super()._deduplicate_sparse_grad(processed)

    def update_step(self, gradient, variable):
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        dtype = variable.dtype
        lr = tf.cast(self.learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        if not isinstance(gradient, tf.IndexedSlices):
            if not isinstance(variable, tf.Variable):  # e.g. a ShardedVariable: Keras' own ops
                return super().update_step(gradient, variable)
            # Keras' dense Adam update (same formula) as one fused kernel instead of ~10
            # element-wise ops per variable.
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=beta_1_power,
                beta2_power=beta_2_power,
                lr=lr,
                beta1=beta_1,
                beta2=beta_2,
                epsilon=tf.cast(self.epsilon, dtype),
                grad=gradient,
                use_locking=False,
            )
            return
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        # ``apply_gradients`` has already summed duplicate rows (Keras' _deduplicate_sparse_grad),
        # so the indices are unique: read-modify-write with gathers and ``scatter_update``
        # (a copy per row) instead of ``scatter_sub`` (several times slower on CPU).
        rows, values = gradient.indices, gradient.values
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        step_rows = alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon)
        variable.scatter_update(tf.IndexedSlices(tf.gather(variable, rows) - step_rows, rows))


def _fits_int32(grad: tf.IndexedSlices) -> bool:
    """True when every row index of ``grad``'s variable fits in int32 (known statically)."""
    rows = grad.dense_shape
    static = tf.get_static_value(rows) if rows is not None else None
    return static is not None and int(static[0]) < 2**31
