"""Exports a tiny serving module with ``save_export`` (launched by tests/test_faults.py).

    python fault_export.py ROOT [--size N] [--pause MARKER]

The module holds a table of ``--size`` floats (so a file-size limit can be hit) and one
``serving_default`` signature. With ``--pause`` it creates MARKER once the SavedModel and
warmup records are in the temporary version directory, before the rename, and sleeps.
Exit 0 prints the version path; a tfrecs error prints ``error: <message>`` and exits 2.
"""

import argparse
import os
import signal
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs.core.errors import TfrecsError  # noqa: E402
from tfrecs.export import saving  # noqa: E402

import numpy as np  # noqa: E402,I001
import tensorflow as tf  # noqa: E402


class Serving(tf.Module):
    def __init__(self, size):
        super().__init__()
        self.table = tf.Variable(tf.random.stateless_normal([size], seed=[1, 2]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="x")])
    def serving_default(self, x):
        return {"score": tf.gather(self.table, x)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--pause")
    args = parser.parse_args()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit becomes an error, not a kill
    if args.pause:
        write_warmup = saving.write_warmup

        def pausing(*a, **k):
            write_warmup(*a, **k)
            open(args.pause, "w").close()
            time.sleep(120)

        saving.write_warmup = pausing
    try:
        result = saving.save_export(
            Serving(args.size),
            args.root,
            "tiny",
            kind="ranking",
            info={},
            warmup_requests=[{"x": np.array([0, 1], np.int64)}],
        )
    except TfrecsError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(result.path)


if __name__ == "__main__":
    main()
