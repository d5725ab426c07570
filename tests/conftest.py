"""Test-session set-up shared by every test file.

The CPU is split into two logical devices before anything touches TensorFlow, so
``MirroredStrategy`` tests can run two replicas on a machine without GPUs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfrecs  # noqa: E402,F401  - selects tf_keras before TensorFlow loads
import tensorflow as tf  # noqa: E402

NUM_LOGICAL_CPUS = 2

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(NUM_LOGICAL_CPUS)]
)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ml100k():
    """The real ML-100K (fetched once into the tfrecs cache from the RecBole wheel on PyPI)."""
    from tfrecs.data import load_movielens

    return load_movielens("ml-100k")
