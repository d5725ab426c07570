"""Every tfrecs model is a plain, serializable Keras model.

For each case of ``tests/factories`` (one tiny model per architecture and objective): compile,
train one step, probe; ``from_config(get_config())`` rebuilds the same architecture; the model
saves in tf-keras' SavedModel format and as ``.keras`` without "non-serializable" / "not built"
warnings; a FRESH process reloads both (``tf_keras.models.load_model``), gets the same class
back and the same outputs.
"""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from factories.probe import all_factories, probe

FACTORIES = all_factories("models")
WORKER = os.path.join(os.path.dirname(__file__), "workers", "reload_models.py")
WARNING_MARKERS = ("non-serializable", "not built", "was never built", "Skipping full serialization")


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _train_one_step(model, batch):
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Builds, trains, probes and saves every case, then reloads them all in one fresh process."""
    root = tmp_path_factory.mktemp("models")
    results = {}
    collector = _Collect()
    loggers = [logging.getLogger(), logging.getLogger("tensorflow"), tf.get_logger()]
    for name, factory in sorted(FACTORIES.items()):
        case = factory()
        model = case.obj
        if case.train:
            _train_one_step(model, case.batch)
        expected = probe(case, model)
        folder = root / name
        folder.mkdir()
        np.savez(folder / "expected.npz", **expected)
        for logger in loggers:
            logger.addHandler(collector)
        collector.messages.clear()
        try:
            model.save(str(folder / "savedmodel"), save_format="tf")
            model.save(str(folder / "model.keras"))
        finally:
            for logger in loggers:
                logger.removeHandler(collector)
        results[name] = {"model": model, "case": case, "warnings": list(collector.messages)}
    completed = subprocess.run([sys.executable, WORKER, str(root)], capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(root / "report.json") as handle:
        report = json.load(handle)
    return root, results, report


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_config_round_trip_rebuilds_the_same_architecture(name):
    case = FACTORIES[name]()
    model = case.obj
    probe(case, model)  # builds the variables
    config = json.loads(json.dumps(model.get_config()))  # must be JSON as it is
    clone = type(model).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    probe(case, clone)
    assert sorted(v.shape.as_list() for v in clone.weights) == sorted(v.shape.as_list() for v in model.weights)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_saving_prints_no_serialization_warning(saved, name):
    _, results, _ = saved
    bad = [m for m in results[name]["warnings"] if any(marker in m for marker in WARNING_MARKERS)]
    assert not bad, bad


@pytest.mark.parametrize("fmt", ["savedmodel", "keras"])
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_fresh_process_reload_gives_the_same_class_and_outputs(saved, name, fmt):
    root, results, report = saved
    assert report[name].get(fmt) == type(results[name]["model"]).__name__, report[name]
    expected = np.load(root / name / "expected.npz")
    reloaded = np.load(root / name / f"reloaded_{fmt}.npz")
    assert sorted(expected.files) == sorted(reloaded.files)
    for key in expected.files:
        np.testing.assert_allclose(reloaded[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=f"{name}: {key}")


def test_every_model_class_has_a_factory():
    import tfrecs.models as models

    covered = {type(FACTORIES[name]().obj).__name__ for name in FACTORIES}
    exported = {cls.__name__ for path, cls in _exported().items() if path.startswith("tfrecs.models.")}
    assert exported <= covered, sorted(exported - covered)
    for path, cls in _exported().items():
        if path.startswith("tfrecs.models."):
            assert getattr(models, path.rsplit(".", 1)[1]) is cls


def _exported():
    import tfrecs.models  # noqa: F401  - registers every model
    from tfrecs.core.registration import exported_classes

    return exported_classes()
