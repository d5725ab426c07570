"""TF Serving warmup file: ``assets.extra/tf_serving_warmup_requests`` of PredictionLog records.

TF Serving replays these requests when it loads a version, before it takes traffic, so the
first user request does not pay for graph initialisation (ScaNN searcher creation, lookup
tables). Records are ``tensorflow_serving.apis.prediction_log_pb2.PredictionLog`` messages
in a TFRecord file, built with ``tensorflow-serving-api`` (pinned with TensorFlow).

Example::

    write_warmup(version_dir, "two_tower", [{"user_id": np.array(["196"], dtype=object)}])
    read_warmup(version_dir)   # [("serving_default", {"user_id": array([b'196'], dtype=object)})]
"""

import os
from typing import Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def write_warmup(
    export_dir: str,
    model_name: str,
    requests: Sequence[Union[Mapping[str, np.ndarray], Tuple[str, Mapping[str, np.ndarray]]]],
    signature_name: str = "serving_default",
) -> str:
    """Writes one PredictionLog record per request; returns the file's path.

    Args:
        export_dir: the SavedModel (version) directory.
        model_name: model name the records address.
        requests: input dicts (signature input name -> numpy batch), or ``(signature name,
            inputs)`` pairs for a request to another signature than ``signature_name``.
        signature_name: signature the plain input dicts call.

    Raises:
        ValueError: no requests.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    if not requests:
        raise ValueError("write_warmup needs at least one request.")
    path = os.path.join(export_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for entry in requests:
            name, inputs = entry if isinstance(entry, tuple) else (signature_name, entry)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = name
            for name, values in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup(export_dir: str) -> List[Tuple[str, Dict[str, np.ndarray]]]:
    """``(signature_name, inputs)`` of every warmup record of an export."""
    from tensorflow_serving.apis import prediction_log_pb2

    records = []
    for raw in tf.data.TFRecordDataset(os.path.join(export_dir, WARMUP_FILE)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        request = log.predict_log.request
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        records.append((request.model_spec.signature_name or "serving_default", inputs))
    return records
