"""What one request can make `tfzoo serve` hold in memory (tfzoo/serving/limits.py), on a `tfzoo serve` process.

TensorFlow fills in a TensorProto that has fewer values than its shape, so a gRPC Predict of 42 bytes can declare
[200000, 28, 28] floats; one got a server OOM-killed at 23.9 GB. Each test reads the server's resident memory
(VmRSS in /proc/PID/status) before and after a request, and checks that the server then answers normal requests.
The last tests check the slicing of large batches itself, in this process.
"""
from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serve_process import WAIT, end, start_server
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc, regression_pb2

from tfzoo.serving.limits import run_in_slices, slice_rows
from tfzoo.serving.loader import load_servable
from tfzoo.serving.predict import run_predict
from tfzoo.serving.protocol.status import ServingError
from tfzoo.serving.protocol.tensor_proto import shape_proto, to_array

MODEL = "mnist_cnn"
MAX_REQUEST_BYTES = 8 * 2**20  # --max_request_bytes
IMAGE = (28, 28)
# The most images a request may declare: a request carries a value in a byte at least (limits.min_request_bytes).
LARGEST_BATCH = MAX_REQUEST_BYTES // (IMAGE[0] * IMAGE[1])
RSS_SLACK_MB = 100  # what a refused request may add to the server's resident memory
# What the largest legal requests may add: their decoded input (33 MB at most), and graph runs in slices of 4 MiB
# of input whose activations are 14x that (60 MB). Run whole, 10,699 images' activations alone are 460 MB.
RSS_BOUND_MB = 200


class _Digits(tf.Module):
    """mnist_cnn's serving shape: "image" [N, 28, 28] -> "scores" [N, 10], through a 3x3 conv of 16 filters (its
    activations are 14x its input); and "regress" on tf.Examples: float feature "x" -> "outputs" x + 1."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.kernel = tf.constant(rng.normal(size=(3, 3, 1, 16)).astype(np.float32))
        self.dense = tf.constant(rng.normal(size=(16, 10)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, *IMAGE], tf.float32, name="image")])
    def predict(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        features = tf.nn.relu(tf.nn.conv2d(image[..., None], self.kernel, 1, "VALID"))
        return {"scores": tf.reduce_mean(features, axis=[1, 2]) @ self.dense}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        x = tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([], tf.float32, default_value=0.0)})["x"]
        return {"outputs": x + 1.0}


DIGITS = _Digits()


def scores(images: np.ndarray) -> np.ndarray:
    """The model's own answer, run here."""
    return DIGITS.predict(tf.constant(images, tf.float32))["scores"].numpy()


class Served(NamedTuple):
    process: subprocess.Popen
    rest_port: int
    stub: prediction_service_pb2_grpc.PredictionServiceStub


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`tfzoo serve --max_request_bytes=8 MiB` for the model, each API's graph run made once (so the first run's
    one-time costs are not counted in a test's memory)."""
    base = tmp_path_factory.mktemp("mnist_cnn")
    tf.saved_model.save(DIGITS, str(base / "1"), signatures={"serving_default": DIGITS.predict,
                                                             "regress": DIGITS.regress})
    process, rest_port, grpc_port = start_server(f"--model_name={MODEL}", f"--model_base_path={base}",
                                                 f"--max_request_bytes={MAX_REQUEST_BYTES}")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            served = Served(process, rest_port, prediction_service_pb2_grpc.PredictionServiceStub(channel))
            answers_normal_requests(served)
            yield served
    finally:
        end(process)


def rss_mb(process: subprocess.Popen) -> float:
    """The process's resident memory now, in MB."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kilobytes) / 1000


def image_request(rows: int, values: np.ndarray) -> predict_pb2.PredictRequest:
    """A Predict declaring [rows, 28, 28] floats that carries only `values` (TensorFlow fills in the rest)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["image"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((rows, *IMAGE)), float_val=values.tolist()))
    return request


def rest_post(port: int, verb: str, body: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        connection.request("POST", f"/v1/models/{MODEL}:{verb}", body.encode(), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def answers_normal_requests(served: Served) -> None:
    """(c) The server runs and answers a normal Predict (gRPC) and Regress (REST) correctly."""
    assert served.process.poll() is None, "the server died"
    images = np.random.default_rng(1).uniform(0, 255, size=(2, *IMAGE)).astype(np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(images))
    response = served.stub.Predict(request, timeout=WAIT)
    np.testing.assert_allclose(to_array(response.outputs["scores"]), scores(images), rtol=1e-5, atol=1e-4)
    body = json.dumps({"signature_name": "regress", "examples": [{"x": 1.5}, {"x": -2.0}]})
    assert rest_post(served.rest_port, "regress", body) == (200, {"results": [2.5, -1.0]})


def test_a_grpc_predict_of_42_bytes_declaring_200000_images_is_refused_before_allocating(server):
    request = image_request(200_000, np.array([], np.float32))
    assert request.ByteSize() == 42
    before = rss_mb(server.process)
    with pytest.raises(grpc.RpcError) as refused:
        server.stub.Predict(request, timeout=WAIT)
    assert rss_mb(server.process) - before < RSS_SLACK_MB
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = refused.value.details()
    for part in ("'image'", "[200000,28,28]", "DT_FLOAT", "627200000 bytes", f"--max_request_bytes={MAX_REQUEST_BYTES}",
                 "Send fewer values per request, or raise --max_request_bytes"):
        assert part in message, message
    answers_normal_requests(server)


# REST's Predict cannot declare a tensor compactly: json_tensor takes a tensor's shape from its nested lists and
# needs every value (its largest body is tested below). Its compact declaration is Classify/Regress's "context",
# which the graph gets copied into every example: here 7 MB x 1000 examples, 7 GB, in a body of 7 MB.
@pytest.mark.parametrize("protocol", ["REST", "gRPC"])
def test_a_examples_whose_context_stands_for_gigabytes_are_refused_before_allocating(server, protocol):
    context, count = "c" * 7_000_000, 1000
    before = rss_mb(server.process)
    if protocol == "REST":
        body = json.dumps({"signature_name": "regress", "context": {"pad": context},
                           "examples": [{"x": float(i)} for i in range(count)]})
        status, answer = rest_post(server.rest_port, "regress", body)
        assert status == 400
        message = answer["error"]
    else:
        request = regression_pb2.RegressionRequest()
        request.model_spec.name, request.model_spec.signature_name = MODEL, "regress"
        with_context = request.input.example_list_with_context
        with_context.context.features.feature["pad"].bytes_list.value.append(context.encode())
        for i in range(count):
            with_context.examples.add().features.feature["x"].float_list.value.append(float(i))
        with pytest.raises(grpc.RpcError) as refused:
            server.stub.Regress(request, timeout=WAIT)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        message = refused.value.details()
    assert rss_mb(server.process) - before < RSS_SLACK_MB
    assert f"{count} tf.Examples with a context of" in message and "Send fewer examples per request" in message
    answers_normal_requests(server)


def test_b_the_largest_declarable_grpc_predict_runs_in_slices_with_bounded_memory(server):
    first = np.random.default_rng(2).uniform(0, 255, size=IMAGE).astype(np.float32)
    values = np.append(first.reshape(-1), np.float32(128.0))  # row 0, then 128.0 filled in everywhere else
    before = rss_mb(server.process)
    response = server.stub.Predict(image_request(LARGEST_BATCH, values), timeout=WAIT)
    assert rss_mb(server.process) - before < RSS_BOUND_MB
    answer = to_array(response.outputs["scores"])
    expected = scores(np.stack([first, np.full(IMAGE, 128.0, np.float32)]))
    assert answer.shape == (LARGEST_BATCH, 10)
    np.testing.assert_allclose(answer[0], expected[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(answer[1:], np.broadcast_to(expected[1], (LARGEST_BATCH - 1, 10)), rtol=1e-5,
                               atol=1e-4)
    with pytest.raises(grpc.RpcError) as refused:  # one image more is more than a request can carry
        server.stub.Predict(image_request(LARGEST_BATCH + 1, values), timeout=WAIT)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    answers_normal_requests(server)


def test_b_the_largest_rest_predict_body_is_answered_with_bounded_memory(server):
    patterns = np.random.default_rng(3).integers(0, 10, size=(8, *IMAGE))  # one digit a value: "d," is 2 bytes
    texts = [json.dumps(pattern.tolist(), separators=(",", ":")) for pattern in patterns]
    head, tail = '{"instances":[', "]}"
    rows = (MAX_REQUEST_BYTES - len(head) - len(tail)) // (len(texts[0]) + 1)
    body = head + ",".join(texts[i % 8] for i in range(rows)) + tail
    assert MAX_REQUEST_BYTES - 2000 < len(body) <= MAX_REQUEST_BYTES
    before = rss_mb(server.process)
    status, answer = rest_post(server.rest_port, "predict", body)
    assert rss_mb(server.process) - before < RSS_BOUND_MB
    assert status == 200, answer
    expected = scores(patterns.astype(np.float32))
    np.testing.assert_allclose(np.array(answer["predictions"]), expected[np.arange(rows) % 8], rtol=1e-5, atol=1e-4)
    answers_normal_requests(server)


# Slicing itself, in this process: the rows of each graph run, and the answers of graphs whose rows do not map.

def test_large_batches_run_in_slices_of_rows_with_outputs_concatenated():
    x = np.arange(2_500_000, dtype=np.float32)  # 10 MB: 1,048,576 rows (4 MiB) per run
    runs = []

    def run(feeds, fetches, timeout_ms):
        runs.append(len(feeds["x"]))
        return [feeds["x"] * 2, feeds["x"][:, None] + 1]

    rows = slice_rows({"x": x})
    assert rows == 1_048_576
    doubled, plus_one = run_in_slices(run, {"x": x}, ["y", "z"], 0, rows)
    assert runs == [1_048_576, 1_048_576, 402_848]
    np.testing.assert_array_equal(doubled, x * 2)
    np.testing.assert_array_equal(plus_one, x[:, None] + 1)
    assert slice_rows({"x": x[:rows]}) is None  # within the bound: one run
    assert slice_rows({"x": x, "y": x[:-1]}) is None  # no shared batch dimension: one run


def test_slices_whose_outputs_do_not_have_their_rows_give_way_to_one_run():
    x = np.tile(np.float32([1, -1]), 2**20)
    runs = []

    def positives(feeds, fetches, timeout_ms):  # tf.where's indices: a [None] output, not one row per input row
        runs.append(len(feeds["x"]))
        return [np.flatnonzero(feeds["x"] > 0)]

    (indices,) = run_in_slices(positives, {"x": x}, ["at"], 0, slice_rows({"x": x}))
    assert runs == [2**20, 2**21]
    np.testing.assert_array_equal(indices, np.arange(0, 2**21, 2))


def test_slices_share_the_timeout():
    x = np.zeros(2**21, np.float32)

    def slow(feeds, fetches, timeout_ms):
        time.sleep(0.05)
        return [feeds["x"]]

    with pytest.raises(ServingError) as timed_out:
        run_in_slices(slow, {"x": x}, ["y"], 1, 2**19)
    assert timed_out.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


class _Totals(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def rows(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * 2}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def totals(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * 2, "total": tf.reduce_sum(x)}  # "total" has no batch dimension


@pytest.mark.parametrize(("signature", "graph_runs"), [("rows", 2), ("totals", 1)])
def test_only_signatures_whose_every_tensor_has_a_batch_dimension_are_sliced(tmp_path, signature, graph_runs):
    module = _Totals()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"rows": module.rows, "totals": module.totals})
    servable = load_servable(tmp_path / "1", "totals", 1, warm_up=False)
    runs = []
    run_session = servable._run_session  # noqa: SLF001 (one call per graph run)

    def counted(*args):
        runs.append(args)
        return run_session(*args)

    servable._run_session = counted  # noqa: SLF001
    x = np.ones(2**21, np.float32)  # 8 MiB: two slices of 4 MiB
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "totals", signature
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    outputs = run_predict(servable, request, tensor_content=True).outputs
    assert len(runs) == graph_runs
    np.testing.assert_array_equal(to_array(outputs["y"]), x * 2)
    if "total" in outputs:
        assert to_array(outputs["total"]) == 2**21
