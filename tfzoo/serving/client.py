"""A client for TF Serving's REST and gRPC APIs: model metadata, model status, predict, classify and regress.

    with Client("127.0.0.1", 8501) as client:  # REST; Client("127.0.0.1", 8500, protocol="grpc") for gRPC
        client.predict("logistic_regression", {"features": [[0.5] * 10]})
        # {"probability": array([[0.62]], dtype=float32), "class_id": array([1])}
        client.regress("half_plus_two", [{"x": 1.0}, {"x": 4.0}], signature="regress_x_to_y")  # array([2.5, 4.])

It uses only TF Serving's documented APIs (https://www.tensorflow.org/tfx/serving/api_rest, and the gRPC
PredictionService and ModelService), so it works with tensorflow_model_server as well as with `tfzoo serve`.
Predict inputs are checked against the signature from the model's metadata before anything is sent: a mistake is
reported here as InvalidInputError naming the input, rather than as whatever the server's graph makes of it.
Both protocols answer with the same numpy arrays, in the signature's output dtypes (strings as bytes objects).
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

import grpc
import numpy as np

from tfzoo.serving.protocol import json_arrays
from tfzoo.serving.protocol.status import CODE_BY_HTTP_STATUS, ServingError, code_from_value

# Metadata and predict over REST take JSON and numpy only. Every TensorFlow and TF Serving proto module imports
# all of TensorFlow (seconds), so the gRPC transport, status, classify and regress import them when they run.
if TYPE_CHECKING:
    from tensorflow_serving.apis import get_model_status_pb2, input_pb2, model_pb2

    from tfzoo.serving.protocol.examples import Features  # one tf.Example: {feature: value or list of values}

Protocol = Literal["rest", "grpc"]

REST_PORT, GRPC_PORT = 8501, 8500  # tensorflow_model_server's defaults
DEFAULT_SIGNATURE = "serving_default"
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.2

_SIGNATURE_DEF_FIELD = "signature_def"  # the one metadata field TF Serving has

_T = TypeVar("_T")


class InvalidInputError(ValueError):
    """Predict inputs that do not fit the signature; raised before any request is sent."""


class ServerError(Exception):
    """A request that failed on the server or on the way to it.

    `code` is the gRPC status (over REST, the one TF Serving's HTTP status stands for), `message` the server's
    message, `http_status` the HTTP status over REST (None over gRPC). UNAVAILABLE: the server could not be
    reached; DEADLINE_EXCEEDED: it did not answer within the client's timeout.
    """

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None):
        super().__init__(f"{code.name}{f' (HTTP {http_status})' if http_status else ''}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


class TensorInfo(NamedTuple):
    """A signature's input or output: its numpy dtype (object for strings, held as bytes) and its shape.

    In the shape, None is a dimension of any size; the shape itself is None when even the rank is not known.
    """

    dtype: np.dtype
    shape: tuple[int | None, ...] | None


class ModelSpec(NamedTuple):
    """Which model, version (or version label) and signature a request is for (TF Serving's ModelSpec)."""

    name: str
    signature_name: str = ""
    version: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class Signature:
    """A model's SignatureDef: inputs and outputs by name; `optional` names the inputs that have defaults, whose
    values `defaults` holds (TensorProtos in proto JSON)."""

    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    optional: frozenset[str] = frozenset()
    defaults: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


class VersionStatus(NamedTuple):
    """One version in a model's status: state is TF Serving's ("AVAILABLE", "LOADING", "END", ...)."""

    version: int
    state: str
    error_code: grpc.StatusCode
    error_message: str


def inputs_from_json(text: str) -> Any:
    """The `inputs` of `Client.predict` from the text of `tfzoo predict --json`: inline JSON or @FILE holding
    {INPUT: VALUES, ...}, plain VALUES, or a TF Serving REST body ({"inputs": ...} or {"instances": [...]}, rows
    of named inputs turned into columns). ValueError, naming --json, for a missing file or text that is not JSON."""
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise ValueError(f"--json @{path}: no such file; pass an existing JSON file after @, or inline JSON")
        text = path.read_text(encoding="utf-8")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--json is not valid JSON ({error}); pass inline JSON or @FILE") from None
    if isinstance(body, dict) and "inputs" in body:
        return body["inputs"]
    if isinstance(body, dict) and "instances" in body:
        rows = body["instances"]
        if isinstance(rows, list) and rows and all(isinstance(row, dict) and "b64" not in row for row in rows):
            names = list(rows[0])
            for index, row in enumerate(rows):
                if sorted(row) != sorted(names):
                    raise ValueError(f"--json instances[{index}] has inputs {', '.join(sorted(row)) or 'none'} but "
                                     f"instances[0] has {', '.join(sorted(names))}; give every row the same inputs")
            return {name: [row[name] for row in rows] for name in names}  # rows of named inputs -> columns
        return rows
    return body


class Client:
    """TF Serving at host:port over REST (default port 8501) or gRPC (default port 8500).

    `timeout`: seconds each request may take (over REST, each read or write on the connection). A request that
    finds the server UNAVAILABLE (connection refused or reset, HTTP 503) is sent again up to `retries` times,
    after `backoff` seconds, then twice as long each time; no other error is retried. Signatures are fetched once
    per (model, version, label) and kept for the client's life: make a new client to see a changed signature.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, protocol: Protocol = "rest",
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF):
        if protocol not in ("rest", "grpc"):
            raise ValueError(f"protocol must be 'rest' or 'grpc', got {protocol!r}")
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError(f"need timeout > 0, retries >= 0, backoff >= 0; got {timeout}, {retries}, {backoff}")
        if port is None:
            port = GRPC_PORT if protocol == "grpc" else REST_PORT
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 host needs brackets
        self.protocol = protocol
        self.retries = retries
        self.backoff = backoff
        self._transport = _Grpc(self.address, timeout, backoff) if protocol == "grpc" else _Rest(self.address, timeout)
        self._signatures: dict[tuple[str, int | None, str | None], dict[str, Signature]] = {}

    @classmethod
    def from_address(cls, address: str, *, protocol: Protocol = "rest", timeout: float = DEFAULT_TIMEOUT,
                     retries: int = DEFAULT_RETRIES, backoff: float = DEFAULT_BACKOFF) -> Client:
        """A client for "HOST:PORT", or "HOST" on the protocol's default port ("[::1]:8500" for IPv6)."""
        try:
            parts = urllib.parse.urlsplit(f"//{address}")
            port = parts.port  # ValueError for a port that is not a number in range
        except ValueError:
            parts = None
        if not parts or not parts.hostname or parts.path or parts.query or parts.fragment or parts.username:
            raise ValueError(f"expected HOST:PORT or HOST, got {address!r}")
        return cls(parts.hostname, port, protocol=protocol, timeout=timeout, retries=retries, backoff=backoff)

    def metadata(self, model: str, *, version: int | None = None, label: str | None = None) -> dict[str, Signature]:
        """The signatures of a model by name, for `version`, the version `label` names, or the latest version."""
        key = (model, version, label)
        if key not in self._signatures:
            spec = _model_spec(model, version, label)
            self._signatures[key] = _signatures(self._retrying(lambda: self._transport.metadata(spec)))
        return self._signatures[key]

    def status(self, model: str, *, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        """The state of `version` (or the version `label` names), or of every version of the model."""
        from tensorflow_serving.apis import get_model_status_pb2

        spec = _model_spec(model, version, label)
        response = self._retrying(lambda: self._transport.status(spec))
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [VersionStatus(status.version, state_name(status.state), code_from_value(status.status.error_code),
                              status.status.error_message) for status in response.model_version_status]

    def predict(self, model: str, inputs: Mapping[str, Any] | Any, *, signature: str = DEFAULT_SIGNATURE,
                version: int | None = None, label: str | None = None) -> dict[str, np.ndarray]:
        """Run a signature of a model on a batch of inputs; returns its outputs by name.

        `inputs` maps input names to array-likes (nested lists, numpy arrays; str or bytes for string inputs).
        A single array-like is enough when the signature has one input, or one input without a default.
        InvalidInputError, before anything is sent, for inputs that do not fit the signature; ServerError for
        what the server refuses.
        """
        signatures = self.metadata(model, version=version, label=label)
        if signature not in signatures:
            raise InvalidInputError(f"model {model!r} has no signature {signature!r}; it has {', '.join(signatures)}")
        expected = signatures[signature]
        arrays = _checked_inputs(expected, signature, inputs)
        # Inputs left out take the signature's defaults here: TF Serving fills them in over gRPC only (its REST
        # parser wants every input of a signature that has several).
        for name in expected.optional - set(arrays):
            arrays[name] = _default_array(name, expected.defaults[name])
        spec = _model_spec(model, version, label, signature)
        return self._retrying(lambda: self._transport.predict(spec, arrays, expected.outputs))

    def classify(self, model: str, examples: Sequence[Features], *, context: Features | None = None,
                 signature: str = DEFAULT_SIGNATURE, version: int | None = None,
                 label: str | None = None) -> list[list[tuple[str, float]]]:
        """Classify tf.Examples given as {feature: value or list of values} (TF Serving's Classify, `:classify`).

        `context` holds features shared by every example. Returns, per example, its (class label, score) pairs;
        a signature with scores only gives "" labels, one with classes only gives 0.0 scores (as TF Serving).
        """
        spec = _model_spec(model, version, label, signature)
        return self._retrying(lambda: self._transport.classify(spec, examples, context))

    def regress(self, model: str, examples: Sequence[Features], *, context: Features | None = None,
                signature: str = DEFAULT_SIGNATURE, version: int | None = None, label: str | None = None) -> np.ndarray:
        """Regress tf.Examples (TF Serving's Regress, `:regress`): one float32 value per example."""
        spec = _model_spec(model, version, label, signature)
        return self._retrying(lambda: self._transport.regress(spec, examples, context))

    def close(self) -> None:
        """Close the gRPC channel (REST holds no connection between requests)."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _retrying(self, call: Callable[[], _T]) -> _T:
        """call(), repeated after backoff, 2 x backoff, ... while the server is UNAVAILABLE, `retries` times at most."""
        for attempt in range(self.retries):
            try:
                return call()
            except ServerError as error:
                if error.code != grpc.StatusCode.UNAVAILABLE:
                    raise
            time.sleep(self.backoff * 2**attempt)
        return call()


# ------------------------------------------------------------------------------------------------ protocols

class _Rest:
    """TF Serving's REST API, one connection per request."""

    def __init__(self, address: str, timeout: float):
        self._url = f"http://{address}/v1/models/"
        self._timeout = timeout

    def metadata(self, spec: ModelSpec) -> dict[str, Any]:
        """The SignatureDefMap in proto JSON: REST writes it itself, where gRPC packs it in an Any."""
        try:
            return self._call(_rest_path(spec) + "/metadata")["metadata"][_SIGNATURE_DEF_FIELD]
        except (KeyError, TypeError):
            raise ServerError(grpc.StatusCode.UNKNOWN, "the /metadata answer holds no metadata.signature_def") from None

    def status(self, spec: ModelSpec) -> get_model_status_pb2.GetModelStatusResponse:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        response = get_model_status_pb2.GetModelStatusResponse()
        return json_format.ParseDict(self._call(_rest_path(spec)), response, ignore_unknown_fields=True)

    def predict(self, spec: ModelSpec, inputs: Mapping[str, np.ndarray],
                outputs: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
        # Columnar format ("inputs" -> "outputs"): unlike row format it keeps the names of several outputs and
        # allows outputs whose batch sizes differ.
        body = json_arrays.json_from_request_tensors(inputs, json_arrays.RequestFormat.COLUMNAR, spec.signature_name)
        answer = self._call(_rest_path(spec) + ":predict", body, parse=False)
        try:
            return json_arrays.arrays_from_json_outputs(answer, {name: info.dtype for name, info in outputs.items()})
        except ServingError as error:
            raise ServerError(grpc.StatusCode.UNKNOWN, f"unreadable :predict answer: {error.message}") from None

    def classify(self, spec: ModelSpec, examples: Sequence[Features],
                 context: Features | None) -> list[list[tuple[str, float]]]:
        results = self._call(_rest_path(spec) + ":classify", _examples_body(spec, examples, context))["results"]
        return [[(str(label), float(score)) for label, score in classes] for classes in results]

    def regress(self, spec: ModelSpec, examples: Sequence[Features], context: Features | None) -> np.ndarray:
        results = self._call(_rest_path(spec) + ":regress", _examples_body(spec, examples, context))["results"]
        return np.asarray(results, dtype=np.float32)

    def close(self) -> None:
        pass  # nothing is held between requests

    def _call(self, path: str, body: str | None = None, parse: bool = True) -> Any:
        """GET (no body) or POST the JSON text `body`; the answer parsed, or as bytes with parse=False."""
        url = self._url + path
        data = None if body is None else body.encode("utf-8")
        request = urllib.request.Request(url, data, {"Content-Type": "application/json"})  # POST when data is set
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer = response.read()
            return json.loads(answer) if parse else answer
        except urllib.error.HTTPError as error:
            raise _http_error(error) from None
        except OSError as error:  # URLError is one too, with the socket's error as its reason
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                message = f"no answer from {url} within {self._timeout} s"
                raise ServerError(grpc.StatusCode.DEADLINE_EXCEEDED, message) from None
            raise ServerError(grpc.StatusCode.UNAVAILABLE, f"cannot reach {url}: {reason}") from None
        except (http.client.HTTPException, ValueError) as error:  # repr: what a gRPC port answers is binary
            message = f"{url} did not answer with TF Serving's JSON (is it the REST port?): {error!r:.200}"
            raise ServerError(grpc.StatusCode.UNKNOWN, message) from None


def _rest_path(spec: ModelSpec) -> str:
    path = urllib.parse.quote(spec.name, safe="")
    if spec.version is not None:
        path += f"/versions/{spec.version}"
    elif spec.label is not None:
        path += f"/labels/{urllib.parse.quote(spec.label, safe='')}"
    return path


def _examples_body(spec: ModelSpec, examples: Sequence[Features], context: Features | None) -> str:
    """A :classify/:regress body; the server types each feature from its JSON values as to_example() does."""
    from tfzoo.serving.protocol import examples as example_protos

    if not examples:
        raise InvalidInputError("give at least one example")
    try:
        body: dict[str, Any] = {"signature_name": spec.signature_name,
                                "examples": [example_protos.to_json_object(features) for features in examples]}
        if context is not None:
            body["context"] = example_protos.to_json_object(context)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None
    return json.dumps(body)


def _http_error(error: urllib.error.HTTPError) -> ServerError:
    """TF Serving's {"error": message} answer as a ServerError; a proxy's page, say, as its text."""
    text = error.read().decode("utf-8", "replace")
    try:
        message = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        message = text.strip()[:500] or str(error.reason)
    return ServerError(CODE_BY_HTTP_STATUS.get(error.code, grpc.StatusCode.UNKNOWN), message, error.code)


class _Grpc:
    """TF Serving's gRPC PredictionService and ModelService on one channel."""

    def __init__(self, address: str, timeout: float, backoff: float):
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self._address = address
        self._timeout = timeout
        options = [
            ("grpc.max_receive_message_length", -1),  # answers are as large as the model makes them
            # A channel that failed to connect fails every call until it tries to connect again, after 1 s at first.
            # Half the client's backoff instead (growing 1.6x, the client's 2x): each retry then goes out on a
            # channel that tried again meanwhile, and so finds a server that came up.
            ("grpc.initial_reconnect_backoff_ms", max(1, round(backoff * 500))),
        ]
        self._channel = grpc.insecure_channel(address, options=options)
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def metadata(self, spec: ModelSpec) -> dict[str, Any]:
        """The SignatureDefMap in proto JSON, as REST answers it."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=_spec_proto(spec),
                                                                 metadata_field=[_SIGNATURE_DEF_FIELD])
        response = self._call(self._predictions.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[_SIGNATURE_DEF_FIELD].Unpack(signature_map)
        return json_format.MessageToDict(signature_map, preserving_proto_field_name=True)

    def status(self, spec: ModelSpec) -> get_model_status_pb2.GetModelStatusResponse:
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest(model_spec=_spec_proto(spec))
        return self._call(self._models.GetModelStatus, request)

    def predict(self, spec: ModelSpec, inputs: Mapping[str, np.ndarray],
                outputs: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
        from tensorflow_serving.apis import predict_pb2

        from tfzoo.serving.protocol.tensor_proto import to_array, to_proto

        request = predict_pb2.PredictRequest(model_spec=_spec_proto(spec))
        for name, array in inputs.items():
            request.inputs[name].CopyFrom(to_proto(array))
        response = self._call(self._predictions.Predict, request)
        try:  # typed fields or tensor_content, whichever the server answers with
            return {name: to_array(proto, name) for name, proto in response.outputs.items()}
        except ServingError as error:
            raise ServerError(grpc.StatusCode.UNKNOWN, f"unreadable Predict answer: {error.message}") from None

    def classify(self, spec: ModelSpec, examples: Sequence[Features],
                 context: Features | None) -> list[list[tuple[str, float]]]:
        from tensorflow_serving.apis import classification_pb2

        request = classification_pb2.ClassificationRequest(model_spec=_spec_proto(spec),
                                                           input=_input(examples, context))
        response = self._call(self._predictions.Classify, request)
        return [[(c.label, c.score) for c in classes.classes] for classes in response.result.classifications]

    def regress(self, spec: ModelSpec, examples: Sequence[Features], context: Features | None) -> np.ndarray:
        from tensorflow_serving.apis import regression_pb2

        request = regression_pb2.RegressionRequest(model_spec=_spec_proto(spec), input=_input(examples, context))
        response = self._call(self._predictions.Regress, request)
        return np.array([r.value for r in response.result.regressions], dtype=np.float32)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Callable[..., _T], request: Any) -> _T:
        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as error:
            code, message = error.code(), error.details()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                message = f"no answer from {self._address} within {self._timeout} s"
            elif code == grpc.StatusCode.UNAVAILABLE:
                message = f"cannot reach {self._address}: {message}"
            raise ServerError(code, message) from None


# ------------------------------------------------------------------------------- shared by both protocols

def _input(examples: Sequence[Features], context: Features | None) -> input_pb2.Input:
    from tfzoo.serving.protocol import examples as example_protos

    try:
        return example_protos.to_input(examples, context)
    except ValueError as error:
        raise InvalidInputError(str(error)) from None


def _model_spec(model: str, version: int | None, label: str | None, signature: str = "") -> ModelSpec:
    if version is not None and label is not None:
        raise ValueError(f"give a version or a label, not both (got version {version} and label {label!r})")
    return ModelSpec(model, signature, version, label)


def _spec_proto(spec: ModelSpec) -> model_pb2.ModelSpec:
    from tensorflow_serving.apis import model_pb2

    proto = model_pb2.ModelSpec(name=spec.name, signature_name=spec.signature_name)
    if spec.version is not None:
        proto.version.value = spec.version
    if spec.label is not None:
        proto.version_label = spec.label
    return proto


# TF's DataType names -> numpy dtypes (strings: object arrays of bytes). Others (bfloat16, complex, resources...)
# are left out: this client sends and reads only these.
_DTYPES = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_HALF": np.float16, "DT_INT8": np.int8,
           "DT_INT16": np.int16, "DT_INT32": np.int32, "DT_INT64": np.int64, "DT_UINT8": np.uint8,
           "DT_UINT16": np.uint16, "DT_UINT32": np.uint32, "DT_UINT64": np.uint64, "DT_BOOL": np.bool_,
           "DT_STRING": object}


def _signatures(signature_map: Mapping[str, Any]) -> dict[str, Signature]:
    """The signatures of a SignatureDefMap in proto JSON (field names as in the .proto, as TF Serving writes them).

    Left out: signatures with tensors that have no dtype, which no predict request can feed (the init op that
    TF2 exports list as "__saved_model_init_op", and composite (ragged, sparse) tensors), or one this client
    does not handle."""
    signatures = {}
    for key, signature in sorted(signature_map.get("signature_def", {}).items()):
        inputs, outputs = signature.get("inputs", {}), signature.get("outputs", {})
        defaults = signature.get("defaults", {})
        if all(info.get("dtype") in _DTYPES for info in [*inputs.values(), *outputs.values()]):
            signatures[key] = Signature(inputs={name: _tensor_info(info) for name, info in sorted(inputs.items())},
                                        outputs={name: _tensor_info(info) for name, info in sorted(outputs.items())},
                                        optional=frozenset(defaults), defaults=defaults)
    return signatures


def _tensor_info(info: Mapping[str, Any]) -> TensorInfo:
    dtype = np.dtype(_DTYPES[info["dtype"]])
    shape = info.get("tensor_shape", {})
    if shape.get("unknown_rank"):
        return TensorInfo(dtype, None)
    sizes = (int(dim.get("size", 0)) for dim in shape.get("dim", []))  # int64 sizes are JSON strings
    return TensorInfo(dtype, tuple(None if size < 0 else size for size in sizes))


def _default_array(name: str, tensor: Mapping[str, Any]) -> np.ndarray:
    """A signature's default value (a TensorProto in proto JSON) as an array. Only the text generator's optional
    inputs have defaults, so the proto modules (and TensorFlow) are imported here, for them alone."""
    from google.protobuf import json_format
    from tensorflow.core.framework import tensor_pb2

    from tfzoo.serving.protocol.tensor_proto import to_array

    return to_array(json_format.ParseDict(tensor, tensor_pb2.TensorProto()), name)


def _checked_inputs(signature: Signature, key: str, inputs: Mapping[str, Any] | Any) -> dict[str, np.ndarray]:
    """`inputs` as arrays of the signature's dtypes; InvalidInputError naming the input where one does not fit."""
    if not isinstance(inputs, Mapping):
        required = [name for name in signature.inputs if name not in signature.optional]
        candidates = list(signature.inputs) if len(signature.inputs) == 1 else required
        if len(candidates) != 1:
            raise InvalidInputError(
                f"signature {key!r} has inputs {_describe_inputs(signature)}: pass a dict of them, not one value"
            )
        inputs = {candidates[0]: inputs}
    unknown = [name for name in inputs if name not in signature.inputs]
    missing = [name for name in signature.inputs if name not in inputs and name not in signature.optional]
    for problem, names in (("unknown", unknown), ("missing", missing)):
        if names:
            raise InvalidInputError(f"{problem} input(s) {', '.join(map(repr, names))}; signature {key!r} has "
                                    f"inputs {_describe_inputs(signature)}")
    arrays = {name: _checked_array(name, value, signature.inputs[name]) for name, value in inputs.items()}
    # A first dimension of any size is the batch; the server answers every example of it, so it must agree.
    batch_sizes = {name: array.shape[0] for name, array in arrays.items()
                   if signature.inputs[name].shape and signature.inputs[name].shape[0] is None}
    if len(set(batch_sizes.values())) > 1:
        sizes = ", ".join(f"{name!r}: {size}" for name, size in batch_sizes.items())
        raise InvalidInputError(f"the inputs' batch sizes (first dimensions) differ: {sizes}")
    return arrays


def _checked_array(name: str, value: Any, info: TensorInfo) -> np.ndarray:
    dtype = info.dtype
    if dtype == object:
        array = _as_bytes_array(name, value)
    elif dtype.kind in "biuf":
        try:
            given = np.asarray(value)
        except ValueError:
            raise InvalidInputError(f"input {name!r} is not a dense tensor: its nested lists must have equal lengths "
                                    "at each depth") from None
        array = _converted(name, given, dtype)
    else:
        raise InvalidInputError(f"input {name!r} is {dtype.name}, which this client does not send")
    expected = info.shape
    if expected is not None and (array.ndim != len(expected)
                                 or any(e is not None and e != n for e, n in zip(expected, array.shape))):
        one_example = array.ndim == len(expected) - 1
        hint = "; a single example still needs the batch dimension: [example]" if one_example else ""
        raise InvalidInputError(f"input {name!r} has shape {array.shape} but the signature expects {expected} "
                                f"(None: any size){hint}")
    return array


def _as_bytes_array(name: str, value: Any) -> np.ndarray:
    """`value` as an object array of bytes (str as UTF-8). An object array keeps bytes whole; numpy's fixed-width
    bytes would drop trailing NUL bytes."""
    array = np.array(value, dtype=object)
    for item in array.flat:
        if not isinstance(item, (str, bytes)):
            raise InvalidInputError(f"input {name!r} expects strings (str or bytes), got {type(item).__name__} "
                                    f"{item!r:.60}")
    encode = np.vectorize(lambda item: item.encode("utf-8") if isinstance(item, str) else item, otypes=[object])
    return encode(array) if array.size else array


def _converted(name: str, given: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`given` as `dtype` when no value changes on the way (beyond float rounding), else InvalidInputError."""
    kind = given.dtype.kind
    if dtype.kind == "b":
        ok = kind == "b"
    elif dtype.kind in "iu":
        whole = kind in "iu" or (kind == "f" and bool(np.all(np.isfinite(given) & (given == np.round(given)))))
        limits = np.iinfo(dtype)
        ok = whole and (given.size == 0 or (given.min() >= limits.min and given.max() <= limits.max))
    else:
        ok = kind in "iuf"
    if not ok:
        raise InvalidInputError(f"input {name!r} expects {dtype.name} values, got {_describe(given)}")
    with np.errstate(over="ignore"):  # reported just below, naming the input
        converted = given.astype(dtype)
    if kind == "f" and np.any(np.isinf(converted) & np.isfinite(given)):
        raise InvalidInputError(f"input {name!r} has values too large for {dtype.name}: {_describe(given)}")
    return converted


def _describe(array: np.ndarray) -> str:
    kinds = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats", "U": "strings", "S": "bytes"}
    if array.dtype.kind not in kinds:
        return f"{array.dtype} values (None, or a mix of numbers and strings?)"
    what = kinds[array.dtype.kind]
    if array.dtype.kind in "iuf" and array.size:
        what += f" in [{array.min()}, {array.max()}]"
    if array.dtype.kind == "f" and np.any(array != np.round(array)):
        what += " with fractions"
    return what


def _describe_inputs(signature: Signature) -> str:
    return ", ".join(f"{name!r} ({'string' if info.dtype == object else info.dtype.name} {info.shape}"
                     f"{', optional' if name in signature.optional else ''})"
                     for name, info in signature.inputs.items())
