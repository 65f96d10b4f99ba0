"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest), as its HttpRestApiHandler answers it.

    GET  /v1/models/NAME[/versions/N | /labels/L]             model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata    signature defs
    POST /v1/models/NAME[/versions/N | /labels/L]:predict     "instances" (row) or "inputs" (columnar)
    POST /v1/models/NAME[/versions/N | /labels/L]:classify    tf.Examples: "examples", optional "context"
    POST /v1/models/NAME[/versions/N | /labels/L]:regress     the same, one float per example

`RestApi.process` is the handler (method, path, body -> HTTP status, JSON text); every request becomes the same
proto the gRPC API takes and goes to the same ModelManager call, with TF Serving's JSON conversions
(`protocol.json_tensor`). Errors are {"error": "message"} with the HTTP status TF Serving maps the code to, and
each request is recorded in the manager's metrics as TF Serving's http_server.cc records it. `RestApi.handle` is
what `http_server.HttpServer` calls: it also serves the Prometheus page when monitoring is on, and
`error_response` writes the HTTP server's own errors (bad framing, deadlines, sizes) in the same JSON.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import grpc
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from tfzoo.serving.http_server import Request, Response
from tfzoo.serving.manager import ModelManager
from tfzoo.serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from tfzoo.serving.options import DEFAULT_TIMEOUT_MS
from tfzoo.serving.protocol import json_tensor
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.servable import DEFAULT_SIGNATURE, SIGNATURE_DEF_FIELD

logger = logging.getLogger(__name__)

# TF Serving's routes (http_rest_api_util.cc): case-insensitive; a path outside /v1/ is not its API at all.
_API_PATH = re.compile(r"/v1/.*", re.I)
_INFERENCE_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
                             re.I)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?", re.I)


class RestApi:
    """TF Serving's HttpRestApiHandler over a ModelManager; `timeout_ms` > 0 bounds each graph run.

    `metrics_path`: where the Prometheus page of the manager's metrics is served (None: not served), as
    --monitoring_config_file's prometheus_config asks.
    """

    def __init__(self, manager: ModelManager, timeout_ms: int = DEFAULT_TIMEOUT_MS, metrics_path: str | None = None):
        self.manager = manager
        self.timeout_ms = timeout_ms
        self.metrics_path = metrics_path

    def handle(self, request: Request) -> Response:
        """One HTTP request: the Prometheus page at `metrics_path`, every other path to `process`."""
        if self.metrics_path is not None and urlsplit(request.target).path == self.metrics_path:
            return Response(200, self.manager.metrics.registry.render().encode(), METRICS_CONTENT_TYPE)
        status, text = self.process(request.method, request.target, request.body)
        # surrogateescape: string outputs that are not UTF-8 go out as their raw bytes, as TF Serving writes them.
        return Response(status, text.encode("utf-8", "surrogateescape"))

    def process(self, method: str, path: str, body: bytes | str) -> tuple[int, str]:
        """Answer one request: (HTTP status, response body as JSON text)."""
        started = time.monotonic()
        path = urlsplit(path).path
        # What TF Serving's handler reports for its metrics: the model and the API verb, once the path names them.
        route = {"model_name": "", "api": ""}
        try:
            status, text, code = 200, self._dispatch(method, path, body, route), grpc.StatusCode.OK
        except ServingError as error:
            status, text, code = error.http_status, json_tensor.json_from_error(error.message), error.code
        except Exception as error:  # a bug or an unexpected model failure must cost one request, not the server
            logger.exception("%s %s failed", method, path)
            status, text = 500, json_tensor.json_from_error(f"Internal error: {error!r}")
            code = grpc.StatusCode.INTERNAL
        if _API_PATH.fullmatch(path):  # TF Serving's dispatcher takes (and records) only its API's paths
            self.manager.metrics.record_request(route["model_name"], route["api"], "REST", code,
                                                time.monotonic() - started)
        return status, text

    def _dispatch(self, method: str, path: str, body: bytes | str, route: dict[str, str]) -> str:
        if not _API_PATH.fullmatch(path):
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Not found: {method} {path} (TF Serving's API is /v1/...)")
        if method == "POST" and (match := _INFERENCE_PATH.fullmatch(path)):
            name, version, label, verb = match.groups()
            route.update(model_name=unquote(name), api=verb)
            spec = _model_spec(name, version, label)
            return {"classify": self._classify, "regress": self._regress, "predict": self._predict}[verb](spec, body)
        if method == "GET" and (match := _STATUS_PATH.fullmatch(path)):
            name, version, label, metadata = match.groups()
            route.update(model_name=unquote(name or ""))
            if not name:
                raise invalid_argument("Missing model name in request.")
            spec = _model_spec(name, version, label)
            return self._metadata(spec) if metadata else self._status(spec)
        raise invalid_argument(f"Malformed request: {method} {path}")

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes | str) -> str:
        request = predict_pb2.PredictRequest(model_spec=spec)
        request_format = json_tensor.fill_predict_request(body, lambda name: self._input_infos(spec, name), request)
        # The response proto never leaves the server: raw bytes are the cheapest way from the graph to the JSON.
        response = self.manager.predict(request, self.timeout_ms, tensor_content=True)
        return json_tensor.json_from_tensors(response.outputs, request_format)

    def _classify(self, spec: model_pb2.ModelSpec, body: bytes | str) -> str:
        request = classification_pb2.ClassificationRequest(model_spec=spec)
        json_tensor.fill_classification_request(body, request)
        response = self.manager.classify(request, self.timeout_ms)
        return json_tensor.json_from_classification_result(response.result)

    def _regress(self, spec: model_pb2.ModelSpec, body: bytes | str) -> str:
        request = regression_pb2.RegressionRequest(model_spec=spec)
        json_tensor.fill_regression_request(body, request)
        response = self.manager.regress(request, self.timeout_ms)
        return json_tensor.json_from_regression_result(response.result)

    def _status(self, spec: model_pb2.ModelSpec) -> str:
        response = self.manager.status(get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
        return json_format.MessageToJson(response, **_JSON_PRINT)

    def _metadata(self, spec: model_pb2.ModelSpec) -> str:
        response = self.manager.metadata(get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD]))
        return metadata_json(response)

    def _input_infos(self, spec: model_pb2.ModelSpec, signature_name: str) -> dict[str, meta_graph_pb2.TensorInfo]:
        # HttpRestApiHandler::GetInfoMap: the JSON is parsed by the dtypes of the signature's inputs.
        key = signature_name or DEFAULT_SIGNATURE
        signatures = self.manager.resolve(spec).signature_defs
        if key not in signatures:
            raise invalid_argument(f'Serving signature name: "{key}" not found in signature def')
        return dict(signatures[key].inputs)


def error_response(status: int, message: str) -> Response:
    """An error of the HTTP exchange itself (framing, sizes, deadlines), written as TF Serving writes errors."""
    return Response(status, json_tensor.json_from_error(message).encode("utf-8", "surrogateescape"))


def metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse) -> str:
    """GetModelMetadataResponse as TF Serving's REST API writes it: the SignatureDefMap itself, not the Any."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
    model_spec = json_format.MessageToJson(response.model_spec, preserving_proto_field_name=True, **_JSON_PRINT)
    signatures = json_format.MessageToJson(signature_map, preserving_proto_field_name=True, **_JSON_PRINT)
    return f'{{\n"model_spec":{model_spec},\n"metadata": {{"signature_def": {signatures}}}\n}}\n'


# TF Serving's JsonPrintOptions for model status and metadata (http_rest_api_util.cc).
_JSON_PRINT: dict[str, Any] = {"always_print_fields_with_no_presence": True, "indent": 2}


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=unquote(name))
    if version is not None:
        try:
            spec.version.value = int(version)
        except ValueError:  # beyond int64
            raise invalid_argument(f"Failed to convert version: {version} to numeric.") from None
    if label is not None:
        spec.version_label = unquote(label)
    return spec
