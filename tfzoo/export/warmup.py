"""TF Serving warm-up requests: assets.extra/tf_serving_warmup_requests, a TFRecord of PredictionLog."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tfzoo.serving.layout import MAX_WARMUP_RECORDS



def write_warmup(path: Path, model_name: str, requests: list[tuple[str, dict[str, np.ndarray]]]) -> None:
    """Write (signature name, {input name: batch}) pairs as PredictRequest logs that TF Serving replays at load."""
    if not 0 < len(requests) <= MAX_WARMUP_RECORDS:
        raise ValueError(f"TF Serving takes 1 to {MAX_WARMUP_RECORDS} warm-up records, got {len(requests)}")
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup(path: Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The (signature name, inputs) pairs of a warm-up file."""
    requests = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        signature = request.model_spec.signature_name or "serving_default"
        requests.append((signature, {name: tf.make_ndarray(tensor) for name, tensor in request.inputs.items()}))
    return requests
