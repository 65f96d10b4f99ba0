"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest), as its HttpRestApiHandler answers it.

    GET  /v1/models/NAME[/versions/N | /labels/L]             model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata    signature defs
    POST /v1/models/NAME[/versions/N | /labels/L]:predict     "instances" (row) or "inputs" (columnar)
    POST /v1/models/NAME[/versions/N | /labels/L]:classify    tf.Examples: "examples", optional "context"
    POST /v1/models/NAME[/versions/N | /labels/L]:regress     the same, one float per example

`RestApi.process` is the handler (method, path, body -> HTTP status, JSON text); every request becomes the same
proto the gRPC API takes and goes to the same ModelManager call, with TF Serving's JSON conversions
(`protocol.json_tensor`). Errors are {"error": "message"} with the HTTP status TF Serving maps the code to.
`RestServer` carries it over HTTP/1.1 on the standard library's threaded server: bodies over `max_body_bytes`
get 413 without being kept in memory, and every response closes its connection (no keep-alive).
"""
from __future__ import annotations

import logging
import re
import socketserver
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

from tfzoo.serving.manager import ModelManager
from tfzoo.serving.protocol import json_tensor
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.servable import DEFAULT_SIGNATURE, SIGNATURE_DEF_FIELD

logger = logging.getLogger(__name__)

# TF Serving's routes (http_rest_api_util.cc): case-insensitive; a path outside /v1/ is not its API at all.
_API_PATH = re.compile(r"/v1/.*", re.I)
_INFERENCE_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
                             re.I)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?", re.I)
DEFAULT_TIMEOUT_MS = 30_000  # --rest_api_timeout_in_ms


class RestApi:
    """TF Serving's HttpRestApiHandler over a ModelManager; `timeout_ms` > 0 bounds each graph run."""

    def __init__(self, manager: ModelManager, timeout_ms: int = DEFAULT_TIMEOUT_MS):
        self.manager = manager
        self.timeout_ms = timeout_ms

    def process(self, method: str, path: str, body: bytes | str) -> tuple[int, str]:
        """Answer one request: (HTTP status, response body as JSON text)."""
        try:
            return 200, self._dispatch(method, urlsplit(path).path, body)
        except ServingError as error:
            return error.http_status, json_tensor.json_from_error(error.message)
        except Exception as error:  # a bug or an unexpected model failure must cost one request, not the server
            logger.exception("%s %s failed", method, path)
            return 500, json_tensor.json_from_error(f"Internal error: {error!r}")

    def _dispatch(self, method: str, path: str, body: bytes | str) -> str:
        if not _API_PATH.fullmatch(path):
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Not found: {method} {path} (TF Serving's API is /v1/...)")
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST" and (match := _INFERENCE_PATH.fullmatch(path)):
            name, version, label, verb = match.groups()
            spec = _model_spec(name, version, label)
            return {"classify": self._classify, "regress": self._regress, "predict": self._predict}[verb](spec, body)
        if method == "GET" and (match := _STATUS_PATH.fullmatch(path)):
            name, version, label, metadata = match.groups()
            if not name:
                raise invalid_argument("Missing model name in request.")
            spec = _model_spec(name, version, label)
            return self._metadata(spec) if metadata else self._status(spec)
        raise malformed

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes | str) -> str:
        request = predict_pb2.PredictRequest(model_spec=spec)
        request_format = json_tensor.fill_predict_request(body, lambda name: self._input_infos(spec, name), request)
        response = self.manager.predict(request, self.timeout_ms)
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


# An oversized body is read and thrown away (so that the client, still sending, gets to read the 413 instead of
# a reset connection), up to this much; beyond it the connection is simply closed.
_MAX_DRAIN_BYTES = 256 * 2**20
_CHUNK_BYTES = 2**20


class _HttpError(Exception):
    """A failure of the HTTP exchange itself (body size, framing), not of a TF Serving request."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class RestServer:
    """`RestApi` over HTTP on host:port, a thread per request."""

    def __init__(self, api: RestApi, host: str, port: int, max_body_bytes: int):
        self._httpd = _HTTPServer((host, port), api, max_body_bytes)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="tfzoo-serve-rest", daemon=True)

    def start(self) -> None:
        """Start answering requests in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting connections, then wait for the requests in flight to be answered."""
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never ran
            self._httpd.shutdown()
        self._httpd.server_close()  # joins the request threads (ThreadingMixIn.block_on_close)


class _HTTPServer(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], api: RestApi, max_body_bytes: int):
        self.api = api
        self.max_body_bytes = max_body_bytes
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall for seconds on an offline machine.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # needed to answer "Expect: 100-continue"; responses still close the connection
    timeout = 60  # a client that stalls mid-request cannot hold a thread, and shutdown, for longer
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._reply(*self.server.api.process("GET", self.path, b""))

    def do_POST(self) -> None:  # noqa: N802
        try:
            body = self._read_body()  # first, even for a request that fails: an unread body would reset the connection
        except _HttpError as error:
            self._reply(error.status, json_tensor.json_from_error(str(error)))
            return
        self._reply(*self.server.api.process("POST", self.path, body))

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it (curl asks first for large bodies).
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.server.max_body_bytes:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, json_tensor.json_from_error(self._too_large(int(length))))
            return False
        return super().handle_expect_100()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        logger.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _HttpError(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not supported; send Content-Length")
        declared = self.headers.get("Content-Length", "0")
        if not declared.isdigit():
            raise _HttpError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {declared!r}")
        length = int(declared)
        if length > self.server.max_body_bytes:
            self._discard(min(length, _MAX_DRAIN_BYTES))
            raise _HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, self._too_large(length))
        body = self.rfile.read(length)
        if len(body) != length:
            raise _HttpError(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {length} bytes")
        return body

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, _CHUNK_BYTES))
            if not chunk:
                return
            length -= len(chunk)

    def _too_large(self, length: int) -> str:
        return f"request body of {length} bytes is larger than this server's limit of {self.server.max_body_bytes}"

    def _reply(self, status: int, text: str) -> None:
        # surrogateescape: string outputs that are not UTF-8 go out as their raw bytes, as TF Serving writes them.
        data = text.encode("utf-8", "surrogateescape")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError as error:  # the client went away; nothing left to tell it
            logger.debug("could not answer %s %s: %s", self.command, self.path, error)
