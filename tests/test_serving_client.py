"""tfzoo.serving.client against a real ModelServer on 127.0.0.1, over real HTTP and gRPC."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from tfzoo.serving.client import Client, InvalidInputError, ServerError, Signature, TensorInfo, VersionStatus
from tfzoo.serving.config import MODELS_CONFIG, write_serving_configs
from tfzoo.serving.server import ModelServer, ServerOptions

PROTOCOLS = ("rest", "grpc")
FEATURES = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.5], [-2.0, 1.5, 0.0]], np.float32)
TEMPERATURE = np.array([1.0, 2.0, 0.5], np.float32)


# ------------------------------------------------------------------------------------------------ test models

class _Scorer(tf.Module):
    """Logistic regression with tfzoo's outputs and a per-example temperature; versions differ by weights."""

    def __init__(self, weights: list[float], bias: float):
        super().__init__()
        self.weights = tf.Variable(np.reshape(weights, (3, 1)), dtype=tf.float32)
        self.bias = tf.Variable(bias)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 3], tf.float32, name="features"),
            tf.TensorSpec([None], tf.float32, name="temperature"),
        ]
    )
    def serve(self, features: tf.Tensor, temperature: tf.Tensor) -> dict[str, tf.Tensor]:
        # Fails in the graph, on the server: what the client cannot check before sending.
        tf.debugging.assert_positive(temperature, message="temperature must be positive")
        probability = tf.sigmoid((features @ self.weights + self.bias) / temperature[:, None])
        return {"probability": probability, "class_id": tf.cast(probability[:, 0] > 0.5, tf.int64)}


class _Echo(tf.Module):
    """Strings in and out, like text_generator: a prompt and an optional scalar control."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompt"),
            tf.TensorSpec([], tf.int32, name="max_length"),
        ]
    )
    def serve(self, prompt: tf.Tensor, max_length: tf.Tensor = tf.constant(4)) -> dict[str, tf.Tensor]:
        return {"text": tf.strings.substr(tf.strings.upper(prompt), 0, max_length)}


@pytest.fixture(scope="module")
def model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MODEL_BASE/NAME/VERSION as tfzoo exports: scorer versions 1 and 2, echo version 1."""
    base = tmp_path_factory.mktemp("model_base")
    for module, path in [
        (_Scorer([1.0, -2.0, 0.5], 0.1), base / "scorer" / "1"),
        (_Scorer([-1.0, 3.0, 0.25], -0.2), base / "scorer" / "2"),
        (_Echo(), base / "echo" / "1"),
    ]:
        tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return base


@pytest.fixture(scope="module")
def config(model_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models.config serving both scorer versions, labelled stable (1) and canary (2)."""
    out = tmp_path_factory.mktemp("config")
    labels = {"scorer": {"stable": 1, "canary": 2}}
    return write_serving_configs(model_base, out, version_policy={"scorer": "all"}, labels=labels)[MODELS_CONFIG]


@pytest.fixture(scope="module")
def server(config: Path) -> Iterator[ModelServer]:
    with ModelServer(ServerOptions(model_config_file=str(config), port=0, rest_api_port=0)) as running:
        yield running


def connect(server: ModelServer, protocol: str, **options: Any) -> Client:
    """A client built as `tfzoo predict --server HOST:PORT [--grpc]` builds it."""
    port = server.port if protocol == "grpc" else server.rest_api_port
    return Client.from_address(f"127.0.0.1:{port}", protocol=protocol, **options)


def in_process(model_base: Path, version: int, **inputs: Any) -> dict[str, np.ndarray]:
    """The scorer's serving_default, called in this process on the SavedModel itself."""
    function = tf.saved_model.load(str(model_base / "scorer" / str(version))).signatures["serving_default"]
    return {name: tensor.numpy() for name, tensor in function(**inputs).items()}


# ---------------------------------------------------------------------------------------------------- predict

@pytest.mark.parametrize(
    ("route", "version"),
    [({}, 2), ({"version": 1}, 1), ({"version": 2}, 2), ({"label": "stable"}, 1), ({"label": "canary"}, 2)],
    ids=["latest", "version-1", "version-2", "label-stable", "label-canary"],
)
def test_predict_equals_the_saved_model_over_both_protocols(
    server: ModelServer, model_base: Path, route: dict[str, Any], version: int
) -> None:
    expected = in_process(model_base, version, features=tf.constant(FEATURES), temperature=tf.constant(TEMPERATURE))
    other = in_process(model_base, 3 - version, features=tf.constant(FEATURES), temperature=tf.constant(TEMPERATURE))
    assert not np.array_equal(expected["class_id"], other["class_id"])  # so the route is what gives the answer
    for protocol in PROTOCOLS:
        with connect(server, protocol) as client:
            outputs = client.predict("scorer", {"features": FEATURES, "temperature": TEMPERATURE}, **route)
        assert outputs.keys() == expected.keys(), protocol
        for name, array in expected.items():
            assert outputs[name].dtype == array.dtype, (protocol, name)
            np.testing.assert_allclose(outputs[name], array, rtol=0, atol=1e-6, err_msg=f"{protocol} {name}")


def test_lists_of_whole_numbers_are_converted_to_the_signature_dtypes(server: ModelServer, model_base: Path) -> None:
    expected = in_process(model_base, 2, features=tf.constant([[1.0, 2.0, 3.0]]), temperature=tf.constant([2.0]))
    for protocol in PROTOCOLS:
        with connect(server, protocol) as client:
            outputs = client.predict("scorer", {"features": [[1, 2, 3]], "temperature": [2]})
        np.testing.assert_allclose(outputs["probability"], expected["probability"], rtol=0, atol=1e-6)
        assert outputs["probability"].dtype == np.float32 and outputs["class_id"].dtype == np.int64


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_strings_and_bytes_round_trip(server: ModelServer, protocol: str) -> None:
    # Trailing NUL bytes, bytes that are not UTF-8 (REST sends and answers them as base64), and UTF-8 text.
    prompts = [b"ab\x00", b"\xff\xfe!x\x00\x00", "h\u00e9llo"]
    with connect(server, protocol) as client:
        # One value for the signature's only input without a default; the server applies max_length's default, 4.
        outputs = client.predict("echo", prompts)
        assert list(outputs) == ["text"]
        assert outputs["text"].dtype == object
        assert outputs["text"].tolist() == [b"AB\x00", b"\xff\xfe!X", b"H\xc3\xa9L"]
        shortened = client.predict("echo", {"prompt": np.array(prompts, object), "max_length": 2.0})["text"]
        assert shortened.tolist() == [b"AB", b"\xff\xfe", b"H\xc3"]


# ------------------------------------------------------------------------------------------ metadata and status

def test_metadata_is_the_same_over_both_protocols(server: ModelServer) -> None:
    float32, int64 = np.dtype(np.float32), np.dtype(np.int64)
    expected = {
        "scorer": Signature(
            inputs={"features": TensorInfo(float32, (None, 3)), "temperature": TensorInfo(float32, (None,))},
            outputs={"class_id": TensorInfo(int64, (None,)), "probability": TensorInfo(float32, (None, 1))},
        ),
        "echo": Signature(
            inputs={"max_length": TensorInfo(np.dtype(np.int32), ()), "prompt": TensorInfo(np.dtype(object), (None,))},
            outputs={"text": TensorInfo(np.dtype(object), (None,))},
            optional=frozenset({"max_length"}),
        ),
    }
    with connect(server, "rest") as rest, connect(server, "grpc") as grpc_client:
        for model, signature in expected.items():
            over_rest, over_grpc = rest.metadata(model), grpc_client.metadata(model)
            assert over_rest == over_grpc
            assert over_rest["serving_default"] == signature
        assert rest.metadata("scorer", label="stable") == grpc_client.metadata("scorer", version=1)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_status(server: ModelServer, protocol: str) -> None:
    def available(version: int) -> VersionStatus:
        return VersionStatus(version, "AVAILABLE", grpc.StatusCode.OK, "")

    with connect(server, protocol) as client:
        assert client.status("scorer") == [available(2), available(1)]
        assert client.status("scorer", version=1) == [available(1)]
        # TF Serving answers a status request with a label for every version: GetModelStatusWithModelSpec
        # (model_servers/get_model_status_impl.cc:76) looks at the spec's version only.
        assert client.status("scorer", label="canary") == [available(2), available(1)]


# --------------------------------------------------------------------------------- inputs checked before sending

@pytest.fixture(scope="module")
def offline_clients(config: Path) -> Iterator[dict[str, Client]]:
    """A REST and a gRPC client that fetched the signatures, then saw their server stop."""
    with ModelServer(ServerOptions(model_config_file=str(config), port=0, rest_api_port=0)) as running:
        clients = {protocol: connect(running, protocol, retries=0) for protocol in PROTOCOLS}
        for client in clients.values():
            client.metadata("scorer")
            client.metadata("echo")
    yield clients
    for client in clients.values():
        client.close()


GOOD = {"features": [[1.0, 2.0, 3.0]], "temperature": [1.0]}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("model", "inputs", "signature", "message"),
    [
        ("scorer", {**GOOD, "bias": [0.0]}, "serving_default", ["unknown input(s) 'bias'", "'features' (float32"]),
        ("scorer", {"features": [[1.0, 2.0, 3.0]]}, "serving_default", ["missing input(s) 'temperature'"]),
        ("scorer", [[1.0, 2.0, 3.0]], "serving_default", ["pass a dict", "'temperature'"]),
        ("scorer", GOOD, "nope", ["no signature 'nope'", "serving_default"]),
        ("scorer", {**GOOD, "features": [["a", "b", "c"]]}, "serving_default", ["'features'", "float32", "strings"]),
        ("scorer", {**GOOD, "features": [[1.0, None, 3.0]]}, "serving_default", ["'features'", "float32", "None"]),
        ("scorer", {**GOOD, "features": [[1.0, 2.0, 3.0], [4.0]]}, "serving_default", ["'features'", "dense"]),
        ("scorer", {**GOOD, "features": [1.0, 2.0, 3.0]}, "serving_default", ["(3,)", "(None, 3)", "[example]"]),
        ("scorer", {**GOOD, "features": [[1.0, 2.0]]}, "serving_default", ["'features'", "(1, 2)", "(None, 3)"]),
        ("scorer", {**GOOD, "temperature": [1.0, 2.0]}, "serving_default", ["'features': 1", "'temperature': 2"]),
        ("scorer", {**GOOD, "temperature": [1e39]}, "serving_default", ["'temperature'", "too large", "float32"]),
        ("echo", {"prompt": ["a"], "max_length": 2.5}, "serving_default", ["'max_length'", "int32", "fractions"]),
        ("echo", {"prompt": ["a"], "max_length": 2**40}, "serving_default", ["'max_length'", "int32", "1099511627776"]),
        ("echo", {"prompt": ["a"], "max_length": True}, "serving_default", ["'max_length'", "int32", "booleans"]),
        ("echo", {"prompt": ["a", 2]}, "serving_default", ["'prompt'", "strings", "int 2"]),
        ("echo", {"prompt": "a"}, "serving_default", ["'prompt'", "shape ()", "(None,)"]),
    ],
    ids=[
        "unknown", "missing", "one-value-for-two-inputs", "unknown-signature", "strings-to-float", "null",
        "ragged", "no-batch-dimension", "wrong-fixed-dimension", "batch-sizes-differ", "float32-overflow",
        "fractions-to-int", "int32-overflow", "bool-to-int", "int-to-string", "scalar-for-vector",
    ],
)
def test_invalid_inputs_raise_before_any_request(
    offline_clients: dict[str, Client], protocol: str, model: str, inputs: Any, signature: str, message: list[str]
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        offline_clients[protocol].predict(model, inputs, signature=signature)
    for part in message:
        assert part in str(raised.value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_valid_inputs_do_reach_for_the_stopped_server(offline_clients: dict[str, Client], protocol: str) -> None:
    # What makes the test above prove its point: a request, had one been sent, fails differently.
    with pytest.raises(ServerError) as raised:
        offline_clients[protocol].predict("scorer", GOOD)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE


# ------------------------------------------------------------------------------------------------ server errors

@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    ("call", "code", "http_status", "message"),
    [
        (lambda client: client.predict("nope", [1.0]), grpc.StatusCode.NOT_FOUND, 404, "nope"),
        (lambda client: client.status("nope"), grpc.StatusCode.NOT_FOUND, 404, "nope"),
        (lambda client: client.predict("scorer", GOOD, version=9), grpc.StatusCode.NOT_FOUND, 404, "9"),
        (lambda client: client.metadata("scorer", label="nope"), grpc.StatusCode.INVALID_ARGUMENT, 400, "nope"),
        (
            lambda client: client.predict("scorer", {**GOOD, "temperature": [-1.0]}),
            grpc.StatusCode.INVALID_ARGUMENT,
            400,
            "temperature must be positive",
        ),
    ],
    ids=["unknown-model", "status-of-unknown-model", "unknown-version", "unknown-label", "graph-refuses-input"],
)
def test_server_errors_carry_code_and_message_and_are_not_retried(
    server: ModelServer,
    protocol: str,
    call: Callable[[Client], Any],
    code: grpc.StatusCode,
    http_status: int,
    message: str,
) -> None:
    with connect(server, protocol, retries=3, backoff=1.0) as client:
        start = time.monotonic()
        with pytest.raises(ServerError) as raised:
            call(client)
        assert time.monotonic() - start < 1.0  # a retry would have slept 1 s first
    assert raised.value.code == code
    assert raised.value.http_status == (http_status if protocol == "rest" else None)
    assert message in raised.value.message


# --------------------------------------------------------------------------------------- retries and timeouts

def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:  # all held at once, so that they differ
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_retries_until_the_server_is_up(config: Path, protocol: str) -> None:
    rest_port, grpc_port = free_ports(2)
    port = grpc_port if protocol == "grpc" else rest_port
    server = ModelServer(ServerOptions(model_config_file=str(config), port=grpc_port, rest_api_port=rest_port))

    with Client("127.0.0.1", port, protocol=protocol, retries=0) as impatient:
        start = time.monotonic()
        with pytest.raises(ServerError) as raised:
            impatient.predict("echo", ["ab"])
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - start < 1.0

    starter = threading.Timer(0.5, server.start)
    starter.start()
    try:
        # Waits 0.1, 0.2, ..., 6.4 s between tries: 12.7 s in all.
        with Client("127.0.0.1", port, protocol=protocol, retries=7, backoff=0.1) as patient:
            assert patient.predict("echo", ["ab"])["text"].tolist() == [b"AB"]
    finally:
        starter.join()
        server.stop()


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus that answers (no versions) once `answer_when` is set, or after 10 s."""

    def __init__(self, answer_when: threading.Event):
        self.answer_when = answer_when

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self.answer_when.wait(10)
        return get_model_status_pb2.GetModelStatusResponse()


def test_grpc_retry_finds_a_server_that_came_up_during_the_backoff() -> None:
    (port,) = free_ports(1)
    answer_now = threading.Event()
    answer_now.set()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(answer_now), server)

    def start() -> None:
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()

    # After the first call fails, gRPC's channel would not try to connect again for 1 s, failing the retry at
    # 0.4 s too; the client has it try again after 0.2 s.
    starter = threading.Timer(0.1, start)
    with Client("127.0.0.1", port, protocol="grpc", retries=1, backoff=0.4) as client:
        starter.start()
        try:
            assert client.status("any") == []
        finally:
            starter.join()
            server.stop(None).wait()


class _SlowHttpServer(ThreadingHTTPServer):
    release: threading.Event


class _SlowHandler(BaseHTTPRequestHandler):
    server: _SlowHttpServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.release.wait(10)  # then hang up without an answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def slow_server(protocol: str) -> Iterator[int]:
    """The port of a server that accepts requests and does not answer them."""
    release = threading.Event()
    if protocol == "rest":
        httpd = _SlowHttpServer(("127.0.0.1", 0), _SlowHandler)
        httpd.release = release
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            yield httpd.server_address[1]
        finally:
            release.set()
            httpd.shutdown()
            httpd.server_close()
    else:
        grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(release), grpc_server)
        port = grpc_server.add_insecure_port("127.0.0.1:0")
        grpc_server.start()
        try:
            yield port
        finally:
            release.set()
            grpc_server.stop(None).wait()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_timeout(protocol: str) -> None:
    with slow_server(protocol) as port, Client("127.0.0.1", port, protocol=protocol, timeout=0.5) as client:
        start = time.monotonic()
        with pytest.raises(ServerError) as raised:
            client.status("slow")
        elapsed = time.monotonic() - start
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "within 0.5 s" in raised.value.message
    assert 0.4 < elapsed < 1.5  # the timeout, and no retry


# ---------------------------------------------------------------------------------------------- construction

@pytest.mark.parametrize(
    ("address", "protocol", "expected"),
    [
        ("localhost:9000", "rest", "localhost:9000"),
        ("serving.example", "rest", "serving.example:8501"),
        ("serving.example", "grpc", "serving.example:8500"),
        ("[::1]:8500", "grpc", "[::1]:8500"),
    ],
)
def test_from_address(address: str, protocol: str, expected: str) -> None:
    with Client.from_address(address, protocol=protocol) as client:
        assert (client.address, client.protocol) == (expected, protocol)


@pytest.mark.parametrize("address", ["", "host:port", "host:99999", "http://host:8501", "host:8501/v1", "[::1"])
def test_from_address_refuses_what_is_not_host_and_port(address: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        Client.from_address(address)


def test_version_and_label_together_are_refused(server: ModelServer) -> None:
    with connect(server, "rest") as client, pytest.raises(ValueError, match="not both"):
        client.metadata("scorer", version=1, label="stable")


def test_close_closes_the_grpc_channel(server: ModelServer) -> None:
    with connect(server, "grpc") as client:
        assert client.status("echo")[0].state == "AVAILABLE"
    with pytest.raises(ValueError, match="closed"):
        client.status("echo")
