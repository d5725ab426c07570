"""A seeded tfrecs fit that can be killed and restarted (launched by tests/test_resume.py).

Trains TinyRanking with Adam and a cosine learning-rate schedule through
``tfrecs.training.fit`` (backup, checkpoints and TensorBoard in ``--run-dir``), then writes
``--result`` (JSON: epochs run, last epoch's logs, final weights). With ``--pause-epoch E
--pause-batch B`` it writes ``--result``.paused after batch B of epoch E and sleeps, so the
test can kill it mid-epoch. With ``--scores s1,s2,...`` a scripted validation figure
``val_score`` (epoch ``e`` scores ``s_e``: the real weights, a known best epoch) drives early
stopping with ``--patience`` and restore_best_weights; the result then also holds the whole
history (``history``, ``epochs``) and the final validation AUC of the restored weights.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs import training  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_models as tm  # noqa: E402


class Pause(tf_keras.callbacks.Callback):
    def __init__(self, marker, epoch, batch):
        super().__init__()
        self.marker, self.pause_epoch, self.pause_batch, self.epoch = marker, epoch, batch, None
        self.epochs_run = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epochs_run.append(epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.pause_epoch and batch == self.pause_batch:
            open(self.marker, "w").close()
            time.sleep(120)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause-epoch", type=int, default=None)
    parser.add_argument("--pause-batch", type=int, default=3)
    parser.add_argument("--scores", default=None, help="comma-separated scripted val_score per epoch")
    parser.add_argument("--patience", type=int, default=None)
    args = parser.parse_args()

    strategy = training.configure(strategy="one_device", precision="float32")
    tf_keras.utils.set_random_seed(args.seed)
    rows = tm.interactions(256, seed=args.seed)
    # Same order every epoch, however often the dataset was iterated before: exact resume.
    train = (
        tf.data.Dataset.from_tensor_slices(rows).shuffle(256, seed=args.seed, reshuffle_each_iteration=False).batch(32)
    )
    valid = tm.dataset(tm.interactions(64, seed=args.seed + 100), 32)
    with strategy.scope():
        model = tm.TinyRanking()
        model.compile(optimizer=training.make_optimizer("adam", 0.05, schedule="cosine", decay_steps=40))
    pause = Pause(args.result + ".paused", args.pause_epoch, args.pause_batch)
    scripted = {}
    if args.scores:
        scores = [float(x) for x in args.scores.split(",")]
        steps = len(list(train))
        scripted = dict(
            monitor="val_score",
            mode="max",
            evaluate_fn=lambda m: {"score": scores[int(m.optimizer.iterations.numpy()) // steps - 1]},
        )
    history = training.fit(
        model,
        train,
        validation_data=valid,
        epochs=args.epochs,
        run_dir=args.run_dir,
        monitor=scripted.pop("monitor", "val_auc"),
        patience=args.patience,
        verbose=0,
        callbacks=[pause],
        **scripted,
    )
    last = {name: float(values[-1]) for name, values in history.history.items()}
    result = {
        "epochs_run": pause.epochs_run,
        "last": last,
        "weights": [v.numpy().tolist() for v in model.trainable_variables],
        "optimizer_steps": int(model.optimizer.iterations.numpy()),
        "history": {name: [float(v) for v in values] for name, values in history.history.items()},
        "epochs": list(history.epoch),
        "final_val_auc": float(model.evaluate(valid, verbose=0, return_dict=True)["auc"]),
    }
    with open(args.result, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
