"""TF Serving warm-up records, defined once: the exporters write them and the local
server (``serving.models``) replays them while loading a version, as TF Serving does.

``assets.extra/tf_serving_warmup_requests`` is a TFRecord file of ``PredictionLog``
protos, each holding a ``predict_log.request`` (a ``PredictRequest``); TF Serving reads
at most ``MAX_WARMUP_RECORDS`` of them.
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


def as_bytes(texts):
    """``str`` or ``bytes`` texts -> a list of ``bytes`` (UTF-8)."""
    return [t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in texts]


def predict_request(texts, signature_name="serving_default", model_name="model"):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` with input ``text``."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    values = np.array(as_bytes(texts), object)
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(values, tf.string, shape=[len(values)]))
    return request


def write_warmup_requests(saved_model_dir, requests, model_name="model"):
    """Writes ``requests`` (``(texts, signature name)`` pairs) as the warm-up file of
    ``saved_model_dir``; returns its path."""
    requests = list(requests)
    if len(requests) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(requests)} warm-up requests; TF Serving reads at most "
                         f"{MAX_WARMUP_RECORDS}")
    path = os.path.join(saved_model_dir, WARMUP_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for texts, name in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(texts, name, model_name)))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir):
    """The first ``MAX_WARMUP_RECORDS`` ``PredictRequest``s of the warm-up file, in order
    (``[]`` if there is none); ``ValueError`` for a record that is not a predict log."""
    path = os.path.join(saved_model_dir, WARMUP_PATH)
    if not os.path.isfile(path):
        return []
    requests = []
    for record in tf.data.TFRecordDataset(path).take(MAX_WARMUP_RECORDS):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{path}: unsupported warm-up record type "
                             f"{log.WhichOneof('log_type')!r} (only predict_log)")
        requests.append(log.predict_log.request)
    return requests
