"""A loaded SavedModel version and its graph runs, as TF Serving's SavedModelBundle holds and runs it.

TF Serving imports the MetaGraph tagged `serve` into a session (`loader.load_servable`), then answers every request
by feeding and fetching the tensors that the SignatureDef names. So TF1 exports (placeholders, lookup tables,
Estimator/TFX graphs) load exactly as TF2 ones do, and nothing checks shapes before the graph does. The APIs run on
a Servable as TF Serving's servables/tensorflow splits them: `predict` (predict_util.cc), `classify_regress`
(classifier.cc, regressor.cc), `multi_inference` (multi_inference.cc), `warmup` (saved_model_warmup.cc); the
metadata (get_model_metadata_impl.cc) is here.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from tfzoo.serving.batching import BatchScheduler
from tfzoo.serving.limits import batch_major, run_in_slices, slice_rows
from tfzoo.serving.metrics import MetricRegistry, ServingMetrics
from tfzoo.serving.options import DEFAULT_MAX_REQUEST_BYTES
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.protocol.tensor_proto import dtype_enum

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SIGNATURE_DEF_FIELD = "signature_def"  # the one GetModelMetadata field TF Serving has
MAX_CALLABLES = 256


class Servable:
    """One loaded version of a model: its MetaGraphDef and a session holding its graph and variables.

    Thread-safe: requests run concurrently, as TF Serving's do. `timeout_ms` > 0 bounds each graph run
    (TF Serving's RunOptions.timeout_in_ms, set by --rest_api_timeout_in_ms for REST requests).
    `max_request_bytes` (--max_request_bytes) bounds what a request may declare (`limits`).
    """

    def __init__(self, name: str, version: int, path: Path, session: tf.compat.v1.Session,
                 meta_graph: meta_graph_pb2.MetaGraphDef, batching: BatchScheduler | None = None,
                 metrics: ServingMetrics | None = None, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
        self.name = name
        self.version = version
        self.path = path
        self.meta_graph = meta_graph
        self.max_request_bytes = max_request_bytes
        self._session = session
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...], int], Callable[..., list[np.ndarray]]] = {}
        self._feed_dtypes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._batching = batching.session(self._run_session, self._check_feed_dtypes) if batching else None
        self.metrics = metrics or ServingMetrics(MetricRegistry())

    @property
    def signature_defs(self) -> Mapping[str, meta_graph_pb2.SignatureDef]:
        """The SignatureDefs of the `serve` MetaGraph, by key, as the file has them."""
        return self.meta_graph.signature_def

    def close(self) -> None:
        """Release the session now rather than when the Servable is collected (requests still on it fail)."""
        self._session.close()

    def run(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str], timeout_ms: int = 0) -> list[np.ndarray]:
        """Feed and fetch tensors by graph name, as TF Serving's Session::Run does; errors as ServingError.

        With batching, through the version's BatchingSession (merged with other requests, same answer; its
        max_batch_size bounds the rows of a run). Without, feeds over `limits.MAX_RUN_INPUT_BYTES` run in slices
        of rows when every fed and fetched tensor has a batch dimension (`limits.run_in_slices`).
        One compiled callable per (feeds, fetches, timeout), so callers should pass few distinct timeouts.
        """
        if self._batching is not None:  # it checks each request's dtypes before merging it with others
            return self._batching.run(feeds, fetches, timeout_ms)
        self._check_feed_dtypes(feeds)
        rows = slice_rows(feeds)
        if rows is None or not self._batch_major([*feeds, *fetches]):
            return self._run_session(feeds, fetches, timeout_ms)
        return run_in_slices(self._run_session, feeds, fetches, timeout_ms, rows)

    def _run_session(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str],
                     timeout_ms: int) -> list[np.ndarray]:
        names, wanted = tuple(sorted(feeds)), tuple(sorted(set(fetches)))  # any order of the same tensors: one key
        key = (names, wanted, timeout_ms)
        function = self._callables.get(key)
        if function is None:
            with self._lock:
                if len(self._callables) >= MAX_CALLABLES:  # bounded, whatever mix of output filters clients send
                    self._callables.clear()
                function = self._callables.get(key) or self._make_callable(names, wanted, timeout_ms)
                self._callables[key] = function
        try:
            values = dict(zip(wanted, function(*(feeds[name] for name in names))))
        except tf.errors.OpError as error:
            raise ServingError.from_tf(error) from None
        return [values[name] for name in fetches]

    def metadata(self, fields: Sequence[str]) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """GetModelMetadata: the SignatureDefMap packed under "signature_def" (the only field TF Serving has)."""
        check_metadata_fields(fields)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def _make_callable(self, feeds: tuple[str, ...], fetches: Sequence[str], timeout_ms: int) -> Callable[..., list]:
        options = config_pb2.CallableOptions(feed=feeds, fetch=fetches)
        if timeout_ms > 0:
            options.run_options.timeout_in_ms = timeout_ms
        try:
            # A callable runs the graph as TF Serving's C++ Session::Run does: unlike Session.run, it does not
            # check fed values against the placeholders' static shapes (TF Serving feeds [2,2] into a [-1,1]
            # input and lets the graph decide). It is also the fastest way to run a session from Python.
            return self._session._make_callable_from_options(options)  # noqa: SLF001
        except (tf.errors.OpError, ValueError, KeyError) as error:  # a SignatureDef naming a tensor not in the graph
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, getattr(error, "message", str(error))) from None

    def _batch_major(self, names: Sequence[str]) -> bool:
        """Whether every one of these graph tensors has a batch dimension (`limits.batch_major`); a name not in
        the graph runs whole, for the session's own error."""
        try:
            return batch_major(self._session.graph.get_tensor_by_name(name).shape for name in names)
        except (ValueError, KeyError):
            return False

    def _check_feed_dtypes(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Session::Run's dtype check of fed values (FunctionCallFrame::SetArgs), in its words; a callable would
        leave it to the graph's _Arg ops, whose message differs."""
        for index, name in enumerate(sorted(feeds)):
            expected = self._feed_dtypes.get(name)
            if expected is None:
                try:
                    expected = self._session.graph.get_tensor_by_name(name).dtype.base_dtype.as_datatype_enum
                except (ValueError, KeyError):  # not in the graph: the session says so, in its own words
                    continue
                self._feed_dtypes[name] = expected
            sent = dtype_enum(feeds[name])
            if sent != expected:
                raise invalid_argument(f"Expects arg[{index}] to be {_dtype_string(expected)} but "
                                       f"{_dtype_string(sent)} is provided")


def check_metadata_fields(fields: Sequence[str]) -> None:
    """ValidateGetModelMetadataRequest: INVALID_ARGUMENT unless there are fields and all are "signature_def"."""
    if not fields:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in fields:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f"Metadata field {field} is not supported")


def set_model_spec(spec: model_pb2.ModelSpec, name: str, signature_name: str | None, version: int) -> None:
    """Fill an answer's ModelSpec as MakeModelSpec (servables/tensorflow/util.cc) does: an empty signature name is
    reported as serving_default, None leaves it out."""
    spec.Clear()
    spec.name = name
    if signature_name is not None:
        spec.signature_name = signature_name or DEFAULT_SIGNATURE
    spec.version.value = version


def _dtype_string(dtype: int) -> str:
    return types_pb2.DataType.Name(dtype)[len("DT_"):].lower()  # DataTypeString: DT_FLOAT -> float

