"""A version's warm-up at load, as TF Serving's saved_model_warmup.cc runs it: every PredictionLog record of
assets.extra/tf_serving_warmup_requests replayed through its API; any failing record fails the load."""
from __future__ import annotations

import time
from pathlib import Path

import grpc
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfzoo.serving.classify_regress import run_classify, run_regress
from tfzoo.serving.layout import ASSETS_EXTRA, MAX_WARMUP_RECORDS, WARMUP_FILE
from tfzoo.serving.multi_inference import run_multi_inference
from tfzoo.serving.predict import run_predict
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.servable import Servable


def warm_up(servable: Servable) -> int:
    """Replay the version's warm-up records; returns how many ran (0 without a warm-up file)."""
    path = servable.path / ASSETS_EXTRA / WARMUP_FILE
    if not path.is_file():
        return 0
    started = time.monotonic()
    count = 0
    for record in read_warmup_records(path):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record)
        except Exception:  # protobuf's DecodeError; any unparsable record is the same failure
            raise invalid_argument(f"Failed to parse warmup record: {record.decode(errors='replace')} "
                                   f"from {path}") from None
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            run_predict(servable, log.predict_log.request)
        elif kind == "classify_log":
            run_classify(servable, log.classify_log.request)
        elif kind == "regress_log":
            run_regress(servable, log.regress_log.request)
        elif kind == "multi_inference_log":
            run_multi_inference(servable, log.multi_inference_log.request)
        elif kind is not None:
            number = log.DESCRIPTOR.fields_by_name[kind].number  # TF Serving prints the LogTypeCase number
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"Unsupported log_type for warmup: {number}")
        count += 1
        if count > MAX_WARMUP_RECORDS:
            raise invalid_argument(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
    servable.metrics.record_warmup(str(servable.path), time.monotonic() - started, count)
    return count


def read_warmup_records(path: Path) -> list[bytes]:
    """The raw records of a warm-up TFRecord file; DATA_LOSS (with TF Serving's hint) when it is not one."""
    try:
        # TF's RecordReader, as TF Serving's SequentialRecordReader (tf.data would wrap its errors in op names).
        return list(tf.compat.v1.io.tf_record_iterator(str(path)))
    except tf.errors.OpError as error:
        raise ServingError(grpc.StatusCode.DATA_LOSS,
                           f"{error.message}. Please verify your warmup data is in TFRecord format.") from None
