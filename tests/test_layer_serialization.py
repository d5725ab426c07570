"""Every tfrecs layer is a plain, serializable Keras layer.

For each case of ``tests/factories/layers.py`` (one tiny layer per exported class, plus
variants): ``from_config(get_config())`` rebuilds the same config and weight shapes;
``tf_keras.layers.deserialize(tf_keras.layers.serialize(layer))`` finds the class by its
``tfrecs>`` registered name; a functional ``tf_keras.Model`` around the layer saves (tf-keras
SavedModel format and ``.keras``) and a FRESH process (``tests/workers/reload_models.py``, which
rebuilds each batch from the same factory) reloads it with the same outputs; the ``.keras`` reload
rebuilds the layer from its config, so it also proves the class is found by its registered name.
Every exported ``tfrecs.layers.*`` class is reachable there and has a case.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from factories.layers import FACTORIES, probe_layer

import tfrecs.layers as layers
from tfrecs.core.registration import exported_classes

WORKER = os.path.join(os.path.dirname(__file__), "workers", "reload_models.py")


def _input(value, name: str):
    """A Keras ``Input`` for ``value`` with a free batch dimension."""
    spec = tf.type_spec_from_value(value)
    shape = [None] + spec.shape.as_list()[1:]
    if isinstance(value, tf.RaggedTensor):
        spec = tf.RaggedTensorSpec(shape, spec.dtype, spec.ragged_rank, spec.row_splits_dtype)
    else:
        spec = tf.TensorSpec(shape, spec.dtype)
    return tf_keras.Input(type_spec=spec, name=name)


def wrap(layer, batch) -> tf_keras.Model:
    """A functional model whose only layer is ``layer``, taking ``batch`` (a tuple as a list)."""
    if isinstance(batch, dict):
        inputs = {name: _input(value, name) for name, value in batch.items()}
        outputs = layer(inputs)
    elif isinstance(batch, tuple):
        inputs = [_input(value, f"input_{i}") for i, value in enumerate(batch)]
        outputs = layer(*inputs)
    else:
        inputs = _input(batch, "input")
        outputs = layer(inputs)
    return tf_keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Wraps, probes and saves every case, then reloads them all in one fresh process."""
    root = tmp_path_factory.mktemp("layers")
    for name, factory in sorted(FACTORIES.items()):
        case = factory()
        model = wrap(case.obj, case.batch)
        expected = probe_layer(case.obj, case.batch)
        folder = root / name
        folder.mkdir()
        np.savez(folder / "expected.npz", **expected)
        model.save(str(folder / "savedmodel"), save_format="tf")
        model.save(str(folder / "model.keras"))
    completed = subprocess.run(
        [sys.executable, WORKER, str(root), "layers"], capture_output=True, text=True, timeout=900
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(root / "report.json") as handle:
        report = json.load(handle)
    return root, report


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_config_round_trip_rebuilds_the_same_layer(name):
    case = FACTORIES[name]()
    layer = case.obj
    probe_layer(layer, case.batch)  # builds the weights
    config = json.loads(json.dumps(layer.get_config()))  # must be JSON as it is
    clone = type(layer).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    probe_layer(clone, case.batch)
    assert sorted(v.shape.as_list() for v in clone.weights) == sorted(v.shape.as_list() for v in layer.weights)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_keras_deserialize_finds_the_registered_class(name):
    layer = FACTORIES[name]().obj
    serialized = tf_keras.layers.serialize(layer)
    assert serialized["registered_name"] == f"tfrecs>{type(layer).__name__}"
    revived = tf_keras.layers.deserialize(json.loads(json.dumps(serialized)))
    assert type(revived) is type(layer)
    assert revived.get_config() == layer.get_config()


@pytest.mark.parametrize("fmt", ["savedmodel", "keras"])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_fresh_process_reload_gives_the_same_layer_and_outputs(saved, name, fmt):
    root, report = saved
    assert report[name].get(fmt) == "Functional", report[name]
    expected = np.load(root / name / "expected.npz")
    reloaded = np.load(root / name / f"reloaded_{fmt}.npz")
    assert sorted(expected.files) == sorted(reloaded.files)
    for key in expected.files:
        np.testing.assert_allclose(reloaded[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=f"{name}: {key}")


def test_every_exported_layer_is_public_and_has_a_case():
    exported = {path: cls for path, cls in exported_classes().items() if path.startswith("tfrecs.layers.")}
    assert exported, "no layer is exported"
    for path, cls in exported.items():
        assert getattr(layers, path.rsplit(".", 1)[1]) is cls, path
    covered = {type(factory().obj) for factory in FACTORIES.values()}
    missing = sorted(path for path, cls in exported.items() if cls not in covered)
    assert not missing, f"exported layers without a case in tests/factories/layers.py: {missing}"
