"""Prediction logs beside an export, TFRecords of TF Serving's PredictionLog:

- assets.extra/tf_serving_warmup_requests: requests only, which TF Serving replays at load (its warm-up file);
- assets.extra/tfzoo_reference_outputs: the same requests with the outputs the trained model itself gave them in
  the exporting process, which `tfzoo validate` compares the served answers with. TF Serving ignores the file.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tfzoo.serving.layout import MAX_WARMUP_RECORDS
from tfzoo.tasks.base import Request

REFERENCE_FILE = "tfzoo_reference_outputs"


def write_warmup(path: Path, model_name: str, requests: Sequence[Request]) -> None:
    """Write (signature name, {input name: batch}) pairs as PredictRequest logs that TF Serving replays at load."""
    if not 0 < len(requests) <= MAX_WARMUP_RECORDS:
        raise ValueError(f"TF Serving takes 1 to {MAX_WARMUP_RECORDS} warm-up records, got {len(requests)}")
    write_logs(path, model_name, requests, [{}] * len(requests))


def write_reference(path: Path, model_name: str, requests: Sequence[Request],
                    outputs: Sequence[dict[str, np.ndarray]]) -> None:
    """Write each request with the outputs the trained model gave it."""
    write_logs(path, model_name, requests, outputs)


def write_logs(path: Path, model_name: str, requests: Sequence[Request],
               outputs: Sequence[dict[str, np.ndarray]]) -> None:
    """One PredictionLog per request: the request, and as its response the outputs given (none for warm-up)."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for (signature, inputs), answer in zip(requests, outputs, strict=True):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            for name, value in answer.items():
                log.predict_log.response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            writer.write(log.SerializeToString())


def read_logs(path: Path) -> list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """(signature name, inputs, recorded outputs) of each record of a prediction-log file."""
    records = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record).predict_log
        signature = log.request.model_spec.signature_name or "serving_default"
        records.append((signature, {name: tf.make_ndarray(tensor) for name, tensor in log.request.inputs.items()},
                        {name: tf.make_ndarray(tensor) for name, tensor in log.response.outputs.items()}))
    return records


def read_warmup(path: Path) -> list[Request]:
    """The (signature name, inputs) pairs of a warm-up file."""
    return [(signature, inputs) for signature, inputs, _ in read_logs(path)]
