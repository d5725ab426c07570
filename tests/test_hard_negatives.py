"""Hard-negative mining: exact top-k of non-positives (matmul and TFRS BruteForce agree
with NumPy), refreshed on schedule during ``fit`` and seen by the running pipeline."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfrecs.pipelines import HardNegativeMiner, HardNegativeRefresh, PositiveIndex, SamplingError, add_hard_negatives

USERS, ITEMS, DIM, K = 30, 45, 4, 3


def _world(seed=0):
    rng = np.random.default_rng(seed)
    queries = rng.normal(size=(USERS, DIM)).astype(np.float32)
    candidates = rng.normal(size=(ITEMS, DIM)).astype(np.float32)
    users = np.repeat(np.arange(USERS), 6)
    items = np.concatenate([rng.choice(ITEMS, 6, replace=False) for _ in range(USERS)])
    return queries, candidates, PositiveIndex(users, items, USERS, ITEMS)


def _reference(queries, candidates, index):
    scores = queries @ candidates.T
    for user in range(USERS):
        scores[user, index.user_items(user)] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :K]


@pytest.mark.parametrize("method", ["matmul", "brute_force"])
def test_mined_negatives_are_the_top_scored_non_positives(method):
    queries, candidates, index = _world()
    table = tf.Variable(queries)
    miner = HardNegativeMiner(
        lambda users: tf.gather(table, users), candidates, USERS, K, exclude=index, method=method, batch_size=7
    )
    miner.refresh()
    np.testing.assert_array_equal(miner.table.numpy(), _reference(queries, candidates, index))
    for user in range(USERS):
        assert not np.isin(miner.table.numpy()[user], index.user_items(user)).any()


class _ScoreHardNegatives(tf_keras.Model):
    """Scores each user's mined negatives (the loss pushes them down), so fit changes the ranking."""

    def __init__(self, queries, candidates):
        super().__init__()
        self.queries = tf.Variable(queries)
        self.candidates = tf.constant(candidates)

    def call(self, batch):
        users = tf.gather(self.queries, batch["user_id"])
        negatives = tf.gather(self.candidates, batch["hard_negative_item_id"])
        return tf.reduce_sum(users[:, None, :] * negatives, axis=-1)


def test_refresh_callback_updates_the_running_pipeline_on_schedule():
    queries, candidates, index = _world(1)
    model = _ScoreHardNegatives(queries, candidates)
    miner = HardNegativeMiner(lambda users: tf.gather(model.queries, users), candidates, USERS, K, exclude=index)
    seen = []

    class Record(tf_keras.callbacks.Callback):  # runs after the refresh callback
        def on_epoch_begin(self, epoch, logs=None):
            seen.append((miner.refreshes, miner.table.numpy().copy(), model.queries.numpy().copy()))

    features = tf.data.Dataset.from_tensor_slices({"user_id": np.arange(USERS)}).batch(USERS)
    ds = add_hard_negatives(features, miner).map(lambda b: (b, tf.zeros([tf.shape(b["user_id"])[0], K])))
    model.compile(optimizer=tf_keras.optimizers.SGD(0.5), loss=lambda y, s: tf.reduce_mean(tf.nn.softplus(s)))
    model.fit(ds, epochs=4, verbose=0, callbacks=[HardNegativeRefresh(miner, every_epochs=2), Record()])
    assert [count for count, _, _ in seen] == [1, 1, 2, 2]  # train begin, then the start of epoch 2
    np.testing.assert_array_equal(seen[0][1], _reference(queries, candidates, index))
    np.testing.assert_array_equal(seen[1][1], seen[0][1])
    np.testing.assert_array_equal(seen[2][1], _reference(seen[2][2], candidates, index))
    assert not np.array_equal(seen[0][1], seen[2][1])
    # the pipeline gathers from the refreshed table without being rebuilt
    batch = next(iter(add_hard_negatives(features, miner)))
    np.testing.assert_array_equal(batch["hard_negative_item_id"].numpy(), miner.table.numpy())


def test_step_schedule_and_bad_arguments():
    queries, candidates, index = _world()
    miner = HardNegativeMiner(lambda users: tf.gather(queries, users), candidates, USERS, K, exclude=index)
    callback = HardNegativeRefresh(miner, every_epochs=None, every_steps=3)
    callback.on_train_begin()
    for step in range(7):
        callback.on_train_batch_end(step)
    assert miner.refreshes == 3
    with pytest.raises(ValueError, match="exactly one"):
        HardNegativeRefresh(miner, every_epochs=1, every_steps=1)
    with pytest.raises(SamplingError, match="cannot supply 40 hard negatives"):
        HardNegativeMiner(lambda users: tf.gather(queries, users), candidates, USERS, 40, exclude=index)
    with pytest.raises(KeyError, match="'user_id' is missing"):
        add_hard_negatives(tf.data.Dataset.from_tensor_slices({"u": np.arange(3)}).batch(2), miner)
