"""`tfzoo serve` under load, abuse and shutdown, as a separate process on 127.0.0.1 (as a real server runs).

Every request in flight when SIGTERM arrives is answered on both protocols; many concurrent clients opening
connections get no resets; every error the server writes, at every layer, is TF Serving's {"error": ...} JSON,
and the server goes on answering valid requests after each.
"""
from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serve_process import WAIT, end, start_server
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


class _Slow(tf.Module):
    """y = x + 1 after sleeping `micros` (TensorFlow's SleepDataset: a graph run that waits without using CPU)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x"),
                                  tf.TensorSpec([None], tf.int64, name="micros")])
    def serve(self, x: tf.Tensor, micros: tf.Tensor) -> dict[str, tf.Tensor]:
        dataset = tf.data.Dataset.from_tensors(x)
        slept = tf.raw_ops.SleepDataset(input_dataset=dataset._variant_tensor,  # noqa: SLF001 (no public op)
                                        sleep_microseconds=tf.reduce_max(micros), output_types=[tf.float32],
                                        output_shapes=[[None]])
        (value,) = tf.raw_ops.DatasetToSingleElement(dataset=slept, output_types=[tf.float32], output_shapes=[[None]])
        return {"y": value + 1.0}


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("slow")
    module = _Slow()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})
    return base


def rest_predict(port: int, x: float, micros: int = 0, connection: http.client.HTTPConnection | None = None
                 ) -> tuple[int, dict]:
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        body = json.dumps({"instances": [{"x": x, "micros": micros}]})
        connection.request("POST", "/v1/models/slow:predict", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        if own:
            connection.close()


def grpc_predict(stub: prediction_service_pb2_grpc.PredictionServiceStub, x: float, micros: int = 0
                 ) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "slow"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([x], np.float32)))
    request.inputs["micros"].CopyFrom(tf.make_tensor_proto(np.array([micros], np.int64)))
    return stub.Predict(request, timeout=WAIT)


def start_slow_server(slow_model: Path, *flags: str) -> tuple[subprocess.Popen, int, int]:
    """`tfzoo serve` for the slow model (and `flags`); returns (process, REST port, gRPC port) once it answers."""
    return start_server("--model_name=slow", f"--model_base_path={slow_model}", *flags)


@pytest.fixture(scope="module")
def server(slow_model: Path) -> Iterator[tuple[int, int]]:
    """(REST port, gRPC port) of one server for the module's load and abuse tests."""
    process, rest_port, grpc_port = start_slow_server(slow_model)
    try:
        yield rest_port, grpc_port
    finally:
        end(process)


@pytest.mark.slow
def test_sigterm_answers_every_request_in_flight_on_both_protocols(slow_model):
    process, rest_port, grpc_port = start_slow_server(slow_model)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel, ThreadPoolExecutor(16) as pool:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert grpc_predict(stub, 0.0).outputs["y"].float_val == [1.0]  # the channel is connected
            rest_answers = [pool.submit(rest_predict, rest_port, float(i), 2_000_000) for i in range(8)]
            grpc_answers = [pool.submit(grpc_predict, stub, float(i), 2_000_000) for i in range(8)]
            time.sleep(0.5)  # the requests reach the server; each then takes seconds to answer
            process.send_signal(signal.SIGTERM)
            assert [answer.result(WAIT) for answer in rest_answers] == [
                (200, {"predictions": [float(i) + 1]}) for i in range(8)]
            assert [answer.result(WAIT).outputs["y"].float_val for answer in grpc_answers] == [
                [float(i) + 1] for i in range(8)]
        assert process.wait(timeout=WAIT) == 0
        with pytest.raises(OSError):  # stopped: the port no longer accepts connections
            socket.create_connection(("127.0.0.1", rest_port), timeout=5).close()
    finally:
        end(process)


def read_answer(connection: socket.socket) -> tuple[int, dict] | str:
    """(status, JSON body) of the one response read until the server closes; what is wrong instead (a close or
    reset without a response, a body that is not JSON) as a string."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except OSError as error:
        return f"{error!r} after {received!r}"
    head, _, body = received.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        return f"no HTTP response: {received!r}"
    try:
        return int(head.split(b" ", 2)[1]), json.loads(body)
    except ValueError:
        return f"no JSON body: {received!r}"


def send_part(port: int, data: bytes) -> socket.socket:
    """A connection that sent `data` (part of a request, or a whole one) and keeps its write side open."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    connection.sendall(data)
    return connection


@pytest.mark.slow
def test_sigterm_with_a_short_rest_timeout_answers_every_request_received_with_json(slow_model):
    # TF Serving bounds the stop by --rest_api_timeout_in_ms: requests still running then, or still arriving, get
    # an error in TF Serving's JSON, never a close without a response.
    process, rest_port, _ = start_slow_server(slow_model, "--rest_api_timeout_in_ms=2000")
    try:
        whole = post("/v1/models/slow:predict", json.dumps({"instances": [{"x": 1.0, "micros": 5_000_000}]}).encode())
        sent = {"slower than the stop": [send_part(rest_port, whole) for _ in range(6)],
                "half a body": [send_part(rest_port, whole[:-10]) for _ in range(2)],
                "half a head": [send_part(rest_port, whole[:20]) for _ in range(2)]}
        assert rest_predict(rest_port, 1.0) == (200, {"predictions": [2.0]})  # every request above was read
        process.send_signal(signal.SIGTERM)
        with ThreadPoolExecutor(16) as pool:
            answers = {case: list(pool.map(read_answer, connections)) for case, connections in sent.items()}
        failures = [(case, answer) for case, each in answers.items() for answer in each
                    if isinstance(answer, str) or not (answer[0] >= 400 and list(answer[1]) == ["error"])]
        assert failures == [], answers
        assert process.wait(timeout=WAIT) == 0
    finally:
        end(process)


@pytest.mark.slow
def test_32_clients_opening_a_connection_per_request_get_no_resets(server):
    rest_port, _ = server
    failures: list[str] = []

    def client(index: int) -> None:
        for i in range(20):
            try:
                status, body = rest_predict(rest_port, float(i))
                if (status, body) != (200, {"predictions": [float(i) + 1]}):
                    failures.append(f"{status} {body}")
            except OSError as error:  # ConnectionResetError, RemoteDisconnected, timeouts
                failures.append(repr(error))

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(client, range(32)))
    assert failures == []


@pytest.mark.slow
def test_32_clients_on_keep_alive_connections_get_no_errors(server):
    rest_port, _ = server
    failures: list[str] = []

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=WAIT)
        try:
            for i in range(20):
                try:
                    if rest_predict(rest_port, float(i), connection=connection) != (
                            200, {"predictions": [float(i) + 1]}):
                        failures.append("wrong answer")
                except OSError as error:
                    failures.append(repr(error))
        finally:
            connection.close()

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(client, range(32)))
    assert failures == []


def raw_exchange(port: int, data: bytes) -> tuple[int, dict]:
    """Send raw bytes on a new connection; (status, JSON body) of the answer, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split(b" ", 2)[1]), json.loads(body)


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n" + extra + b"\r\n" + body)


ABUSE = {  # what a client sends -> the status TF Serving's API or HTTP layer answers it with
    "method the API has not": (b"PUT /v1/models/slow:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400),
    "unknown path": (b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    "malformed request line": (b"GARBAGE\r\n\r\n", 400),
    "TLS ClientHello": (bytes.fromhex("16030100a5010000a10303") + bytes(160), 400),
    "URL of 100 KB": (b"GET /v1/models/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "header of 100 KB": (b"GET /v1/models/slow HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n", 431),
    "invalid JSON": (post("/v1/models/slow:predict", b'{"instances": [1,'), 400),
    "wrong tensor type": (post("/v1/models/slow:predict", b'{"instances": [{"x": "text", "micros": 0}]}'), 400),
    "unknown model": (post("/v1/models/nope:predict", b'{"instances": [1]}'), 404),
    "body over --max_request_bytes": (b"POST /v1/models/slow:predict HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 999999999999\r\n\r\n", 413),
    "bad chunked body": (b"POST /v1/models/slow:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"zz\r\n", 400),
}


@pytest.mark.parametrize("case", ABUSE)
def test_every_error_is_tf_serving_json_and_the_server_goes_on(server, case):
    rest_port, _ = server
    data, status = ABUSE[case]
    answer_status, answer = raw_exchange(rest_port, data)
    assert answer_status == status
    assert list(answer) == ["error"] and answer["error"], answer
    assert rest_predict(rest_port, 1.0) == (200, {"predictions": [2.0]})
