"""One worker of a two-process MultiWorkerMirroredStrategy fit (launched by tests/test_multi_worker.py).

Reads TF_CONFIG like any multi-worker job, trains TinyRanking with SGD through
``tfrecs.training.fit`` (BackupAndRestore in ``--run-dir``), and writes to ``--out``:
``init_<i>.npz`` / ``final_<i>.npz`` (trainable weights) and ``epochs_<i>.txt`` (epochs run).
With ``--pause-epoch E`` worker ``--pause-worker`` writes ``paused_<i>`` after batch 1 of
epoch E and sleeps, so the test can kill it mid-fit.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs import training  # noqa: E402

STRATEGY = training.configure(strategy="multi_worker", precision="float32")  # before any other op

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_models as tm  # noqa: E402

ROWS, GLOBAL_BATCH = 64, 16


def weights(model):
    return {f"w{i}": v.numpy() for i, v in enumerate(model.trainable_variables)}


class Recorder(tf_keras.callbacks.Callback):
    def __init__(self, out, index, pause_epoch, pause_worker):
        super().__init__()
        self.out, self.index = out, index
        self.pause = pause_epoch is not None and pause_worker == index
        self.pause_epoch = pause_epoch
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        with open(os.path.join(self.out, f"epochs_{self.index}.txt"), "a") as f:
            f.write(f"{epoch}\n")

    def on_train_batch_end(self, batch, logs=None):
        if self.pause and self.epoch == self.pause_epoch and batch == 1:
            open(os.path.join(self.out, f"paused_{self.index}"), "w").close()
            time.sleep(120)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pause-epoch", type=int, default=None)
    parser.add_argument("--pause-worker", type=int, default=1)
    args = parser.parse_args()
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    os.makedirs(args.out, exist_ok=True)

    tf_keras.utils.set_random_seed(0)
    data = tm.dataset(tm.interactions(ROWS, seed=3), GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = data.with_options(options)
    with STRATEGY.scope():
        model = tm.TinyRanking()
        model.compile(optimizer=tf_keras.optimizers.SGD(0.5))
        model.build_from_batch(next(iter(data)))
    np.savez(os.path.join(args.out, f"init_{index}.npz"), **weights(model))
    training.fit(
        model,
        data,
        epochs=args.epochs,
        run_dir=args.run_dir,
        tensorboard=False,
        checkpoints=False,
        verbose=0,
        callbacks=[Recorder(args.out, index, args.pause_epoch, args.pause_worker)],
    )
    np.savez(os.path.join(args.out, f"final_{index}.npz"), **weights(model))


if __name__ == "__main__":
    main()
