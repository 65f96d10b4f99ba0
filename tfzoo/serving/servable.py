"""A SavedModel version loaded and run the way TF Serving runs it (its SavedModelBundle).

TF Serving imports the MetaGraph tagged `serve` into a session, restores the variables, runs the main/init op
and the table initialisers with the assets wired in, then answers every request by feeding and fetching the
tensors that the SignatureDef names. So TF1 exports (placeholders, lookup tables, Estimator/TFX graphs) load
exactly as TF2 ones do, and nothing checks shapes before the graph does. This module does the same, with the
request handling of TF Serving's predict_util.cc, classifier.cc, regressor.cc, multi_inference.cc and
saved_model_warmup.cc, on the protos of tensorflow-serving-api.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from tfzoo.serving.batching import BatchScheduler
from tfzoo.serving.layout import ASSETS_EXTRA, MAX_WARMUP_RECORDS, SERVE_TAG, WARMUP_FILE
from tfzoo.serving.limits import (
    batch_major,
    check_examples,
    check_tensors,
    run_in_slices,
    slice_rows,
)
from tfzoo.serving.metrics import MetricRegistry, ServingMetrics
from tfzoo.serving.options import DEFAULT_MAX_REQUEST_BYTES
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.protocol.tensor_proto import dtype_enum, to_array, to_proto

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
CLASSIFY_INPUTS, CLASSIFY_CLASSES, CLASSIFY_SCORES = "inputs", "classes", "scores"
REGRESS_INPUTS, REGRESS_OUTPUTS = "inputs", "outputs"
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
        self._metrics = metrics or ServingMetrics(MetricRegistry())

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

    def predict(self, request: predict_pb2.PredictRequest, *, tensor_content: bool = False,
                timeout_ms: int = 0) -> predict_pb2.PredictResponse:
        """Predict as TF Serving's RunPredict: inputs by alias (or the signature's defaults), output filter,
        outputs in typed fields (or tensor_content, like --enable_serialization_as_tensor_content)."""
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature_name not in self.signature_defs:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{signature_name}" not found.')
        signature = self.signature_defs[signature_name]
        feeds = _input_values(signature, request, self.max_request_bytes)
        aliases = _output_aliases(signature, request.output_filter)
        started = time.monotonic()
        outputs = self.run(feeds, [signature.outputs[alias].name for alias in aliases], timeout_ms)
        self._metrics.record_runtime(request.model_spec.name, "Predict", time.monotonic() - started)
        response = predict_pb2.PredictResponse()
        _set_model_spec(response.model_spec, request.model_spec.name, signature_name, self.version)
        for alias, value in zip(aliases, outputs):
            response.outputs[alias].CopyFrom(to_proto(value, tensor_content=tensor_content))
        return response

    def classify(self, request: classification_pb2.ClassificationRequest,
                 timeout_ms: int = 0) -> classification_pb2.ClassificationResponse:
        """Classify tf.Examples as TF Serving's RunClassify: a classify-shaped signature's classes and scores."""
        response = classification_pb2.ClassificationResponse()
        self._run_examples(request, "Classify", _classification_tensors, _classification_result, response, timeout_ms)
        return response

    def regress(self, request: regression_pb2.RegressionRequest,
                timeout_ms: int = 0) -> regression_pb2.RegressionResponse:
        """Regress tf.Examples as TF Serving's RunRegress: a regress-shaped signature's one float per example."""
        response = regression_pb2.RegressionResponse()
        self._run_examples(request, "Regress", _regression_tensors, _regression_result, response, timeout_ms)
        return response

    def multi_inference(self, request: inference_pb2.MultiInferenceRequest,
                        timeout_ms: int = 0) -> inference_pb2.MultiInferenceResponse:
        """Several classify/regress tasks on the same examples in one graph run (TF Serving's MultiInference)."""
        model_name = ""
        seen: set[str] = set()
        input_names: set[str] = set()
        output_names: set[str] = set()
        tasks = []
        for task in request.tasks:
            if not task.model_spec.name:
                raise invalid_argument("Found ModelSpec with an empty model name.")
            if model_name and task.model_spec.name != model_name:
                raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
            model_name = task.model_spec.name
            signature_name = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if signature_name in seen:
                raise invalid_argument(f"Duplicate evaluation of signature: {signature_name}")
            seen.add(signature_name)
            if signature_name not in self.signature_defs:
                raise invalid_argument(f"Requested signature not found in model graph: {signature_name}")
            signature = self.signature_defs[signature_name]
            if task.method_name == CLASSIFY_METHOD:
                input_name, names = _classification_tensors(signature)
            elif task.method_name == REGRESS_METHOD:
                input_name, names = _regression_tensors(signature)
            else:
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"Unsupported signature method_name: {task.method_name}")
            input_names.add(input_name)
            output_names.update(names)
            tasks.append((task, signature))
        examples = serialized_examples(request.input, self.max_request_bytes)
        fetches = sorted(output_names)
        outputs = dict(zip(fetches, self.run({name: examples for name in sorted(input_names)}, fetches, timeout_ms)))
        self._metrics.record_examples(model_name, len(examples))
        response = inference_pb2.MultiInferenceResponse()
        for task, signature in tasks:
            result = response.results.add()
            if task.method_name == CLASSIFY_METHOD:
                _classification_result(signature, len(examples), outputs, result.classification_result)
            else:
                _regression_result(signature, len(examples), outputs, result.regression_result)
            _set_model_spec(result.model_spec, task.model_spec.name, task.model_spec.signature_name, self.version)
        return response

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

    def warm_up(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests, as TF Serving does at load; returns the records run.

        Any failing record fails the warm-up (and so the load), with TF Serving's status.
        """
        path = self.path / ASSETS_EXTRA / WARMUP_FILE
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
                self.predict(log.predict_log.request)
            elif kind == "classify_log":
                self.classify(log.classify_log.request)
            elif kind == "regress_log":
                self.regress(log.regress_log.request)
            elif kind == "multi_inference_log":
                self.multi_inference(log.multi_inference_log.request)
            elif kind is not None:
                number = log.DESCRIPTOR.fields_by_name[kind].number  # TF Serving prints the LogTypeCase number
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"Unsupported log_type for warmup: {number}")
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise invalid_argument(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
        self._metrics.record_warmup(str(self.path), time.monotonic() - started, count)
        return count

    def _run_examples(self, request, api: str, tensors: Callable, write_result: Callable, response,
                      timeout_ms: int) -> None:
        """Classify or Regress: the signature's tensors (checked by `tensors`), one run on the serialized
        examples, the outputs checked and written into response.result by `write_result`."""
        signature = self._example_signature(request.model_spec)
        input_name, output_names = tensors(signature)
        examples = serialized_examples(request.input, self.max_request_bytes)
        started = time.monotonic()
        outputs = self.run({input_name: examples}, output_names, timeout_ms)
        self._metrics.record_runtime(request.model_spec.name, api, time.monotonic() - started)
        _set_model_spec(response.model_spec, request.model_spec.name, request.model_spec.signature_name,
                        self.version)
        write_result(signature, len(examples), dict(zip(output_names, outputs)), response.result)

    def _example_signature(self, spec: model_pb2.ModelSpec) -> meta_graph_pb2.SignatureDef:
        signature_name = spec.signature_name or DEFAULT_SIGNATURE
        if signature_name not in self.signature_defs:
            raise invalid_argument(f"No signature was found with the name: {signature_name}")
        return self.signature_defs[signature_name]

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


def load_servable(path: str | os.PathLike[str], name: str = "", version: int = 0, *,
                  warm_up: bool = True, intra_op_threads: int = 0, inter_op_threads: int = 0,
                  batching: BatchScheduler | None = None, metrics: ServingMetrics | None = None,
                  xla_cpu_compilation_enabled: bool = False,
                  max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> Servable:
    """Load the `serve` MetaGraph of the SavedModel at `path` into a new session, as TF Serving does.

    With `warm_up`, replays the version's warm-up requests before returning (a failing one fails the load).
    Thread counts of 0 let TensorFlow choose, as TF Serving's defaults do. With `batching`, graph runs are
    merged with other requests' by that (server-wide) scheduler, warm-up included. `metrics` records graph runs
    and the warm-up (TF Serving's runtime_latency, model_warmup_latency, ...). A graph that needs XLA
    (`xla_parts`) loads only with `xla_cpu_compilation_enabled` (--xla_cpu_compilation_enabled); without it,
    FAILED_PRECONDITION in one line naming the flag (TF Serving fails such a graph at its first compile).
    `max_request_bytes` bounds what each request, warm-up records included, may declare (`limits`).
    """
    path = Path(path)
    graph = tf.Graph()
    config = config_pb2.ConfigProto(intra_op_parallelism_threads=intra_op_threads,
                                    inter_op_parallelism_threads=inter_op_threads)
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(path))
        needs_xla = xla_parts(meta_graph)
        if needs_xla and not xla_cpu_compilation_enabled:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"{path} needs XLA (XLA-compiled calls: {len(needs_xla)}) and XLA compilation is off: "
                               "start the server with --xla_cpu_compilation_enabled=true")
        servable = Servable(name, version, path, session, meta_graph, batching, metrics, max_request_bytes)
        if warm_up:
            servable.warm_up()
    except BaseException:
        session.close()
        raise
    return servable


def xla_parts(meta_graph: meta_graph_pb2.MetaGraphDef) -> list[str]:
    """What needs XLA: Xla* ops, and function calls marked to compile with XLA (jit_compile=True). The stock
    tensorflow_model_server compiles nothing unless started with --xla_cpu_compilation_enabled."""
    nodes = list(meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
        nodes.extend(function.node_def)
    ops = {node.op for node in nodes if node.op.lstrip("_").startswith("Xla")}
    compiled = {f"{node.op} {node.name} (jit_compile)" for node in nodes
                if "_XlaMustCompile" in node.attr and node.attr["_XlaMustCompile"].b}
    return sorted(ops | compiled)


def check_metadata_fields(fields: Sequence[str]) -> None:
    """ValidateGetModelMetadataRequest: INVALID_ARGUMENT unless there are fields and all are "signature_def"."""
    if not fields:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in fields:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f"Metadata field {field} is not supported")


def read_warmup_records(path: Path) -> list[bytes]:
    """The raw records of a warm-up TFRecord file; DATA_LOSS (with TF Serving's hint) when it is not one."""
    try:
        # TF's RecordReader, as TF Serving's SequentialRecordReader (tf.data would wrap its errors in op names).
        return list(tf.compat.v1.io.tf_record_iterator(str(path)))
    except tf.errors.OpError as error:
        raise ServingError(grpc.StatusCode.DATA_LOSS,
                           f"{error.message}. Please verify your warmup data is in TFRecord format.") from None


def serialized_examples(model_input: input_pb2.Input, max_request_bytes: int) -> np.ndarray:
    """The request's tf.Examples as a [N] string tensor; with a context, each is context + example bytes (so the
    example's features are merged over the context's, as protobuf merges concatenated messages). INVALID_ARGUMENT
    when that is more than a request of `max_request_bytes` could carry (`limits.check_examples`)."""
    check_examples(model_input, max_request_bytes)
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [example.SerializeToString() for example in model_input.example_list.examples]
    elif kind == "example_list_with_context":
        context = model_input.example_list_with_context.context.SerializeToString()
        examples = [context + example.SerializeToString()
                    for example in model_input.example_list_with_context.examples]
    else:
        examples = []
    if not examples:
        raise invalid_argument("Input is empty.")
    return np.array(examples, dtype=object)


def _set_model_spec(spec: model_pb2.ModelSpec, name: str, signature_name: str | None, version: int) -> None:
    # MakeModelSpec (servables/tensorflow/util.cc): an empty signature name is reported as serving_default.
    spec.Clear()
    spec.name = name
    if signature_name is not None:
        spec.signature_name = signature_name or DEFAULT_SIGNATURE
    spec.version.value = version


def _input_values(signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest,
                  max_request_bytes: int) -> dict[str, np.ndarray]:
    """{tensor name: value} for every signature input, from the request or the signature's defaults; the request's
    tensors are checked against `max_request_bytes` before any is made an array (`limits.check_tensors`)."""
    sent, expected = set(request.inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")
    check_tensors(request.inputs, max_request_bytes)
    feeds = {}
    for alias, info in sorted(signature.inputs.items()):
        if alias in request.inputs:
            proto = request.inputs[alias]
        elif alias in signature.defaults:
            proto = signature.defaults[alias]
        else:
            raise invalid_argument(f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                                   f"and no defaults were provided.")
        feeds[info.name] = to_array(proto, alias)
    extra = sent - expected
    if extra:
        raise invalid_argument(f"Inputs contains keys not found in signature or defaults: {', '.join(sorted(extra))}")
    return feeds


def _output_aliases(signature: meta_graph_pb2.SignatureDef, output_filter: Sequence[str]) -> list[str]:
    """The output aliases to fetch: the filter's, checked, or every output of the signature."""
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                                   f"the set {{{','.join(sorted(signature.outputs))}}}.")
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen or sorted(signature.outputs)


def _classification_tensors(signature: meta_graph_pb2.SignatureDef) -> tuple[str, list[str]]:
    """PreProcessClassification: the input tensor and the classes/scores tensors a classify signature has."""
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid_argument(f"No classification inputs found in SignatureDef: {_debug_string(signature)}")
    names = [signature.outputs[key].name for key in (CLASSIFY_CLASSES, CLASSIFY_SCORES) if key in signature.outputs]
    if not names:
        raise invalid_argument(
            f'Expected classification signature outputs to contain at least one of "{CLASSIFY_CLASSES}" or '
            f'"{CLASSIFY_SCORES}". Signature was: {_debug_string(signature)}')
    return signature.inputs[CLASSIFY_INPUTS].name, names


def _regression_tensors(signature: meta_graph_pb2.SignatureDef) -> tuple[str, list[str]]:
    """PreProcessRegression: the input tensor and the one output tensor a regress signature has."""
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if REGRESS_INPUTS not in signature.inputs:
        raise invalid_argument(f"No regression inputs found in SignatureDef: {_debug_string(signature)}")
    if REGRESS_OUTPUTS not in signature.outputs:
        raise invalid_argument(f"No regression outputs found in SignatureDef: {_debug_string(signature)}")
    return signature.inputs[REGRESS_INPUTS].name, [signature.outputs[REGRESS_OUTPUTS].name]


def _classification_result(signature: meta_graph_pb2.SignatureDef, num_examples: int,
                           outputs: Mapping[str, np.ndarray], result: classification_pb2.ClassificationResult) -> None:
    """PostProcessClassificationResult: check the classes/scores tensors and write one Classifications each."""
    classes = outputs.get(signature.outputs[CLASSIFY_CLASSES].name) if CLASSIFY_CLASSES in signature.outputs else None
    scores = outputs.get(signature.outputs[CLASSIFY_SCORES].name) if CLASSIFY_SCORES in signature.outputs else None
    for tensor, what, dtype in ((classes, "classes", types_pb2.DT_STRING), (scores, "scores", types_pb2.DT_FLOAT)):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {_shape_debug_string(tensor.shape)}")
        if dtype_enum(tensor) != dtype:
            raise invalid_argument(f"Expected {what} Tensor of {types_pb2.DataType.Name(dtype)}. Got: "
                                   f"{types_pb2.DataType.Name(dtype_enum(tensor))}")
        if tensor.shape[0] != num_examples:
            raise invalid_argument(f"Expected {what} output batch size of {num_examples}. Got: {tensor.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. "
                               f"{scores.shape[1]}")
    num_classes = (classes if classes is not None else scores).shape[1]
    for i in range(num_examples):
        classifications = result.classifications.add()
        for c in range(num_classes):
            entry = classifications.classes.add()
            if classes is not None:
                entry.label = classes[i, c]
            if scores is not None:
                entry.score = float(scores[i, c])


def _regression_result(signature: meta_graph_pb2.SignatureDef, num_examples: int, outputs: Mapping[str, np.ndarray],
                       result: regression_pb2.RegressionResult) -> None:
    """PostProcessRegressionResult: one float per example from a [N] or [N, 1] DT_FLOAT tensor."""
    tensor = outputs[signature.outputs[REGRESS_OUTPUTS].name]
    if not (tensor.ndim == 1 or (tensor.ndim == 2 and tensor.shape[1] == 1)):
        raise invalid_argument(f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                               f"{_shape_debug_string(tensor.shape)}")
    if tensor.shape[0] != num_examples:
        raise invalid_argument(
            f"Input batch size did not match output batch size: {num_examples} vs. {tensor.shape[0]}")
    if dtype_enum(tensor) != types_pb2.DT_FLOAT:
        raise invalid_argument(
            f"Expected output Tensor of DT_FLOAT.  Got: {types_pb2.DataType.Name(dtype_enum(tensor))}")
    for value in tensor.reshape(-1):
        result.regressions.add().value = float(value)


def _dtype_string(dtype: int) -> str:
    return types_pb2.DataType.Name(dtype)[len("DT_"):].lower()  # DataTypeString: DT_FLOAT -> float


def _shape_debug_string(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"  # TensorShape::DebugString


def _debug_string(message) -> str:
    return text_format.MessageToString(message)  # protobuf's DebugString
