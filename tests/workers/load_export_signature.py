"""Loads a tfrecs export in a fresh process with only TensorFlow and ScaNN, as a server would.

    python load_export_signature.py OUTPUTS.npz INPUTS.npz EXPORT_DIR [INPUTS.npz EXPORT_DIR ...]

Runs each export's ``serving_default`` three ways and writes every output to OUTPUTS.npz,
under ``<position>/`` (0 for the first export):

* ``tf2/<output>``: ``tf.saved_model.load`` + ``signatures["serving_default"]``; inputs missing
  from INPUTS.npz get the SignatureDef default (what TF Serving does);
* ``tf1/<output>``: ``tf.compat.v1.saved_model.loader.load`` into a session (the path TF
  Serving's C++ loader resembles), missing inputs left unfed (their defaults apply);
* ``warmup/<record>/<output>``: every record of ``assets.extra/tf_serving_warmup_requests``
  replayed through the session.

It never imports tfrecs (and checks that); ``import scann`` registers the ScaNN ops.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import scann  # noqa: E402,F401  - registers the Scann ops before the graph loads
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import prediction_log_pb2  # noqa: E402


def _plain(value: np.ndarray) -> np.ndarray:
    return value.astype("S") if value.dtype == object else value


def _signature_defaults(signature_def) -> dict:
    return {name: tf.make_ndarray(proto) for name, proto in signature_def.defaults.items()}


def run_tf2(export_dir: str, inputs: dict, defaults: dict) -> dict:
    loaded = tf.saved_model.load(export_dir)
    function = loaded.signatures["serving_default"]
    feeds = {**defaults, **inputs}
    return {name: value.numpy() for name, value in function(**{k: tf.constant(v) for k, v in feeds.items()}).items()}


def run_session(session, signature_def, inputs: dict) -> dict:
    feeds = {signature_def.inputs[name].name: value for name, value in inputs.items()}
    fetches = {name: info.name for name, info in signature_def.outputs.items()}
    return session.run(fetches, feeds)


def warmup_inputs(export_dir: str) -> list:
    path = os.path.join(export_dir, "assets.extra", "tf_serving_warmup_requests")
    records = []
    for raw in tf.compat.v1.io.tf_record_iterator(path):
        request = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
        records.append({name: tf.make_ndarray(proto) for name, proto in request.inputs.items()})
    return records


def check_export(export_dir: str, inputs_path: str) -> dict:
    inputs = dict(np.load(inputs_path))
    results = {}
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
        signature_def = meta_graph.signature_def["serving_default"]
        defaults = _signature_defaults(signature_def)
        for name, value in run_session(session, signature_def, inputs).items():
            results[f"tf1/{name}"] = value
        for index, record in enumerate(warmup_inputs(export_dir)):
            for name, value in run_session(session, signature_def, record).items():
                results[f"warmup/{index}/{name}"] = value
    for name, value in run_tf2(export_dir, inputs, defaults).items():
        results[f"tf2/{name}"] = value
    return results


def main(outputs_path: str, *pairs: str) -> None:
    assert "tfrecs" not in sys.modules, "the loader must not import tfrecs"
    results = {}
    for position in range(len(pairs) // 2):
        inputs_path, export_dir = pairs[2 * position], pairs[2 * position + 1]
        for name, value in check_export(export_dir, inputs_path).items():
            results[f"{position}/{name}"] = value
    assert "tfrecs" not in sys.modules, "loading the exports imported tfrecs"
    np.savez(outputs_path, **{name: _plain(np.asarray(value)) for name, value in results.items()})


if __name__ == "__main__":
    main(*sys.argv[1:])
