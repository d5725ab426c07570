"""Feeds generated requests to exports' ``serving_default`` in a fresh process (TF + ScaNN only).

    python property_serving.py REQUESTS.json RESULTS.jsonl

REQUESTS.json: ``{"exports": {"retrieval": DIR, ...}, "requests": [{"export": "retrieval",
"inputs": {name: {"dtype": "string", "shape": [2], "value": "u1", "repeat": 1}}}, ...]}``.
Each input is ``np.full(shape, value * repeat if a string else value)`` of the dtype.

RESULTS.jsonl gets one JSON line per export first (``{"signature": {export: {name: [dtype,
shape]}}}``), then one line per request, written and flushed as soon as it is answered, so
a crash shows which request killed the process: ``{"index": i, "ok": true, "outputs":
{name: {"dtype", "shape", "finite", "min", "max"}}}`` or ``{"index": i, "ok": false,
"error": "<type>: <message>"}``. It never imports tfrecs (and checks that).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import scann  # noqa: E402,F401  - registers the ScaNN ops before the graph loads
import tensorflow as tf  # noqa: E402

DTYPES = {
    "string": tf.string,
    "int64": tf.int64,
    "int32": tf.int32,
    "float32": tf.float32,
    "float64": tf.float64,
    "bool": tf.bool,
}


def tensor(spec: dict) -> tf.Tensor:
    value = spec["value"]
    if isinstance(value, str):
        value = value * spec.get("repeat", 1)
    dtype = DTYPES[spec["dtype"]]
    array = np.full(spec["shape"], value, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    return tf.constant(array, dtype=dtype)


def describe(value: tf.Tensor) -> dict:
    array = value.numpy()
    numeric = array.dtype.kind in "fiu" and array.size
    return {
        "dtype": value.dtype.name,
        "shape": list(array.shape),
        "finite": bool(np.isfinite(array).all()) if array.dtype.kind == "f" else True,
        "min": float(array.min()) if numeric else None,
        "max": float(array.max()) if numeric else None,
    }


def answer(function, request: dict) -> dict:
    try:
        outputs = function(**{name: tensor(spec) for name, spec in request["inputs"].items()})
    except Exception as error:  # noqa: BLE001 - every failure is reported to the test, which judges it
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:20000]}
    return {"ok": True, "outputs": {name: describe(value) for name, value in outputs.items()}}


def main(requests_path: str, results_path: str) -> None:
    assert "tfrecs" not in sys.modules, "the worker must not import tfrecs"
    with open(requests_path, encoding="utf-8") as handle:
        payload = json.load(handle)
    functions = {
        name: tf.saved_model.load(path).signatures["serving_default"] for name, path in payload["exports"].items()
    }
    with open(results_path, "w", encoding="utf-8") as results:
        signature = {
            name: {
                key: [spec.dtype.name, spec.shape.as_list()]
                for key, spec in function.structured_input_signature[1].items()
            }
            for name, function in functions.items()
        }
        results.write(json.dumps({"signature": signature}) + "\n")
        results.flush()
        for index, request in enumerate(payload["requests"]):
            results.write(json.dumps({"index": index, **answer(functions[request["export"]], request)}) + "\n")
            results.flush()
    assert "tfrecs" not in sys.modules, "serving the exports imported tfrecs"


if __name__ == "__main__":
    main(*sys.argv[1:])
