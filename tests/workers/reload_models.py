"""Fresh-process half of tests/test_model_serialization.py: reload every saved model and probe it.

Usage: python reload_models.py <directory written by the test>
For every ``<dir>/<name>/`` it loads ``savedmodel/`` and ``model.keras`` with tf_keras only (plus
``tfrecs``, whose import registers the classes), probes the reloaded model on the factory's
batch and writes ``<dir>/<name>/reloaded_<format>.npz`` and the reloaded class name.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [TESTS, os.path.dirname(TESTS)]

import tfrecs  # noqa: E402,F401  - registers every tfrecs class
import tfrecs.layers  # noqa: E402,F401
import tfrecs.models  # noqa: E402,F401
import numpy as np  # noqa: E402
import tf_keras  # noqa: E402
from factories.probe import all_factories, probe  # noqa: E402


def main(root: str) -> None:
    factories = all_factories(sys.argv[2] if len(sys.argv) > 2 else "models")
    report = {}
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        case = factories[name]()
        report[name] = {}
        for fmt, path in (("savedmodel", "savedmodel"), ("keras", "model.keras")):
            full = os.path.join(folder, path)
            if not os.path.exists(full):
                continue
            try:
                model = tf_keras.models.load_model(full)
                np.savez(os.path.join(folder, f"reloaded_{fmt}.npz"), **probe(case, model))
                report[name][fmt] = type(model).__name__
            except Exception as error:  # reported per case by the test
                report[name][fmt] = f"error: {type(error).__name__}: {error}"[:2000]
    with open(os.path.join(root, "report.json"), "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(sys.argv[1])
