"""`import tfrecs` selects tf_keras, and refuses clearly when Keras 3 is already bound."""

import os
import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_import_tfrecs_first_makes_tf_keras_the_keras():
    result = _run("import tfrecs, tensorflow as tf; print(tf.keras.__name__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")


def test_import_after_tensorflow_still_works_while_keras_is_unbound():
    result = _run("import tensorflow as tf; import tfrecs; print(tf.keras.__name__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")


def test_import_after_keras3_was_bound_raises_an_import_error_that_says_what_to_do():
    result = _run("import tensorflow as tf; tf.keras.layers; import tfrecs")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "Import tfrecs before tensorflow" in result.stderr
    assert "TF_USE_LEGACY_KERAS=1" in result.stderr
