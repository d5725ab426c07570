"""A worker or ps process of a parameter-server job (launched by tests/test_parameter_server.py).

Reads TF_CONFIG like any cluster task and serves it with ``training.serve_cluster_task()``
until it is killed; the chief sends it variables and steps.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tfrecs  # noqa: E402,F401  - before TensorFlow
from tfrecs import training  # noqa: E402

if __name__ == "__main__":
    training.serve_cluster_task()
