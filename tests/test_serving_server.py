"""tfzoo serve on tfzoo's own TF2 exports, over real HTTP and gRPC on 127.0.0.1: the behaviour around TF Serving's
API that its own tests do not pin down (strings and bytes, named inputs, new versions without a restart, broken
versions, oversized bodies, SIGTERM), with TF Serving's answers and error texts.

TF Serving's own test cases on its fixtures are ported in test_tfs_model_server.py (tensorflow_model_server_test.py,
http_rest_api_handler_test.cc), test_tfs_servable.py and test_tfs_mnist_example.py; they are not repeated here.
"""
from __future__ import annotations

import base64
import json
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from conftest import TF_SERVING_TESTDATA
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfzoo.serving.server import ModelServer, ServerOptions, free_port

REPO = Path(__file__).resolve().parents[1]
TESTDATA = TF_SERVING_TESTDATA
TWO_VERSIONS = "saved_model_half_plus_two_2_versions"  # named as in TF Serving's metadata fixture for it


# ------------------------------------------------------------------------------------------------ test models

class _Affine(tf.Module):
    """y = slope * x + intercept, a TF2 export like tfzoo's own (versions of the `live` model differ by slope)."""

    def __init__(self, slope: float, intercept: float):
        super().__init__()
        self.slope = tf.Variable(slope)
        self.intercept = tf.Variable(intercept)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.slope * x + self.intercept}


class _Strings(tf.Module):
    """Several named inputs (one a scalar), strings in and out."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([None, 2], tf.float32, name="scale"),
            tf.TensorSpec([], tf.float32, name="offset"),
        ]
    )
    def serve(self, text: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor) -> dict[str, tf.Tensor]:
        return {
            "length": tf.strings.length(text),
            "text_bytes": text,
            "upper": tf.strings.upper(text),
            "scaled": scale * 2.0 + offset,
        }


def _save(module: tf.Module, path: Path) -> Path:
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """SavedModels written once: affine v1 (y = x + 1) and v2 (y = 2x + 1), and the strings model."""
    root = tmp_path_factory.mktemp("exports")
    return {
        "affine_v1": _save(_Affine(1.0, 1.0), root / "affine_v1"),
        "affine_v2": _save(_Affine(2.0, 1.0), root / "affine_v2"),
        "strings": _save(_Strings(), root / "strings"),
    }


def _write_config(path: Path, models: list[dict[str, Any]]) -> Path:
    """A models.config for `models`: dicts with name, base_path and optional extra text-proto lines."""
    blocks = "".join(
        f'  config {{\n    name: "{m["name"]}"\n    base_path: "{m["base_path"]}"\n'
        f'    model_platform: "tensorflow"\n{m.get("extra", "")}  }}\n'
        for m in models
    )
    path.write_text(f"model_config_list {{\n{blocks}}}\n")
    return path


@pytest.fixture(scope="module")
def model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model_base")


@pytest.fixture(scope="module")
def server(model_base: Path, exports: dict[str, Path]) -> Iterator[ModelServer]:
    """One server on free ports for the whole module; it polls every 0.2 s."""
    shutil.copytree(exports["affine_v1"], model_base / "live" / "1")
    shutil.copytree(exports["strings"], model_base / "strings" / "1")
    (model_base / "broken" / "7").mkdir(parents=True)
    (model_base / "broken" / "7" / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    models = [
        {"name": "live", "base_path": model_base / "live"},
        {"name": "strings", "base_path": model_base / "strings"},
        {"name": "broken", "base_path": model_base / "broken"},
        {"name": "default", "base_path": TESTDATA / "saved_model_half_plus_two_cpu"},
        {
            "name": TWO_VERSIONS,
            "base_path": TESTDATA / TWO_VERSIONS,
            "extra": "    model_version_policy { all {} }\n"
            '    version_labels { key: "stable" value: 123 }\n'
            '    version_labels { key: "canary" value: 124 }\n',
        },
    ]
    config = _write_config(model_base / "models.config", models)
    options = ServerOptions(model_config_file=str(config), port=0, rest_api_port=0, file_system_poll_wait_seconds=0.2)
    with ModelServer(options) as running:
        yield running


# ------------------------------------------------------------------------------------------------ clients

def rest(server: ModelServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """(HTTP status, parsed JSON answer) of one REST call; bytes bodies are sent as they are."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_api_port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())


def _json(body: bytes) -> Any:
    # TF Serving writes string outputs as their raw bytes, UTF-8 or not (util/json_tensor.cc:918).
    return json.loads(body.decode("utf-8", "surrogateescape"))


@pytest.fixture(scope="module")
def channel(server: ModelServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as open_channel:
        yield open_channel


def grpc_predict(
    channel: grpc.Channel,
    name: str,
    inputs: dict[str, Any],
    *,
    version: int | None = None,
    version_label: str = "",
    signature_name: str = "",
    output_filter: tuple[str, ...] = (),
) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest(output_filter=output_filter)
    request.model_spec.name = name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    if version_label:
        request.model_spec.version_label = version_label
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


def grpc_status(channel: grpc.Channel, name: str, label: str = "") -> get_model_status_pb2.GetModelStatusResponse:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if label:
        request.model_spec.version_label = label
    return model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)


def assert_serving(server: ModelServer) -> None:
    """The server still answers a good request."""
    assert rest(server, "POST", "/v1/models/live:predict", {"instances": [1.0]})[0] == 200


# -------------------------------------------------------------------------------------------------- gRPC

def test_grpc_predict_equals_rest(server: ModelServer, channel: grpc.Channel) -> None:
    # An empty signature name is answered as serving_default (predict_util.cc:97: MakeModelSpec gets the resolved
    # name); TF Serving's own tests always name it.
    response = grpc_predict(channel, "default", {"x": np.array([2.0, 3.0, 4.0], np.float32)})
    _, rest_answer = rest(server, "POST", "/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]})
    assert tf.make_ndarray(response.outputs["y"]).tolist() == rest_answer["outputs"] == [3.0, 3.5, 4.0]
    assert (response.model_spec.name, response.model_spec.version.value) == ("default", 123)
    assert response.model_spec.signature_name == "serving_default"


@pytest.mark.parametrize(
    ("name", "inputs", "spec", "code", "message"),
    [
        ("nope", {"x": [1.0]}, {}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
        ("live", {"x": [1.0]}, {"version": 99}, grpc.StatusCode.NOT_FOUND, "Specific(live, 99)"),
        # TensorFlow's saved_model::GetInputValues (cc/saved_model/util.cc), called by predict_util.cc:129
        ("live", {"z": [1.0]}, {}, grpc.StatusCode.INVALID_ARGUMENT,
         ("Signature input alias: x(feed name: serving_default_x:0) not found in request and no defaults were "
          "provided.")),
        # predict_util.cc:51 VerifyRequestInputsSize
        ("live", {"x": [1.0], "z": [1.0]}, {}, grpc.StatusCode.INVALID_ARGUMENT,
         ("input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but "
          "required: {}.")),
        # Session::Run checks the fed dtypes (predict_util.cc:109 runs the session with no check of its own)
        ("live", {"x": [b"a"]}, {}, grpc.StatusCode.INVALID_ARGUMENT,
         "Expects arg[0] to be float but string is provided"),
        # predict_util.cc:92 RunPredict: an unknown signature is FAILED_PRECONDITION
        ("live", {"x": [1.0]}, {"signature_name": "nope"}, grpc.StatusCode.FAILED_PRECONDITION,
         'Serving signature key "nope" not found.'),
        ("live", {"x": [1.0]}, {"version_label": "nope"}, grpc.StatusCode.INVALID_ARGUMENT,
         "Unrecognized servable version label: nope"),
    ],
)
def test_grpc_errors(
    channel: grpc.Channel, name: str, inputs: dict, spec: dict, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        grpc_predict(channel, name, inputs, **spec)
    assert raised.value.code() == code
    assert message in raised.value.details()
    assert tf.make_ndarray(grpc_predict(channel, "live", {"x": [1.0]}).outputs["y"]).shape == (1,)


def test_shapes_are_left_to_the_graph(server: ModelServer, channel: grpc.Channel) -> None:
    # TF Serving feeds the request's tensors to Session::Run as they are (predict_util.cc:109): nothing compares
    # them with the signature's shapes ([-1] here), so an elementwise graph answers any shape.
    assert tf.make_ndarray(grpc_predict(channel, "live", {"x": [[1.0], [2.0]]}).outputs["y"]).tolist() == [[2.0], [3.0]]
    assert rest(server, "POST", "/v1/models/live:predict", {"instances": [[1.0, 2.0]]}) == (
        200, {"predictions": [[2.0, 3.0]]})


def test_grpc_metadata_needs_the_signature_def_field(channel: grpc.Channel) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["nope"])
    request.model_spec.name = "live"
    with pytest.raises(grpc.RpcError) as raised:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # servables/tensorflow/get_model_metadata_impl.cc:43 ValidateGetModelMetadataRequest
    assert raised.value.details() == "Metadata field nope is not supported"


# ------------------------------------------------------------------------------- versions and labels

def test_versions_and_labels_route_to_their_version(server: ModelServer, channel: grpc.Channel) -> None:
    _, status = rest(server, "GET", f"/v1/models/{TWO_VERSIONS}")
    assert [(s["version"], s["state"]) for s in status["model_version_status"]] == [
        ("124", "AVAILABLE"),
        ("123", "AVAILABLE"),
    ]
    # TF Serving's metadata fixture for this model is the answer for version 123.
    expected = json.loads((TESTDATA / f"{TWO_VERSIONS}_metadata.json").read_text())
    assert rest(server, "GET", f"/v1/models/{TWO_VERSIONS}/versions/123/metadata") == (200, expected)
    assert rest(server, "GET", f"/v1/models/{TWO_VERSIONS}/labels/stable/metadata") == (200, expected)
    _, canary = rest(server, "GET", f"/v1/models/{TWO_VERSIONS}/labels/canary/metadata")
    assert canary["model_spec"]["version"] == "124"
    # Model status ignores a label: get_model_status_impl.cc:82 narrows to one version only when the spec has a
    # version, so a label's status lists every version, as the model's does.
    assert rest(server, "GET", f"/v1/models/{TWO_VERSIONS}/labels/canary") == (200, status)

    for path in ("versions/123", "labels/stable", "labels/canary"):
        answer = rest(server, "POST", f"/v1/models/{TWO_VERSIONS}/{path}:predict", {"instances": [[2.0]]})
        assert answer == (200, {"predictions": [[3.0]]})
    assert grpc_predict(channel, TWO_VERSIONS, {"x": [[2.0]]}, version_label="stable").model_spec.version.value == 123
    assert grpc_predict(channel, TWO_VERSIONS, {"x": [[2.0]]}, version_label="canary").model_spec.version.value == 124
    assert grpc_predict(channel, TWO_VERSIONS, {"x": [[2.0]]}, version=123).model_spec.version.value == 123
    assert grpc_predict(channel, TWO_VERSIONS, {"x": [[2.0]]}).model_spec.version.value == 124  # latest
    assert [s.version for s in grpc_status(channel, TWO_VERSIONS, "stable").model_version_status] == [124, 123]


def test_classify_and_regress_follow_labels(server: ModelServer) -> None:
    # :classify and :regress route by version and label as :predict does (http_rest_api_handler.cc); the TF1
    # fixture's classify_x_to_y and regress_x_to_y both answer 0.5 * x + 2.
    for path in ("", "/versions/123", "/labels/canary"):
        body = {"signature_name": "classify_x_to_y", "examples": [{"x": 4.0}, {"x": 6.0}]}
        assert rest(server, "POST", f"/v1/models/{TWO_VERSIONS}{path}:classify", body) == (
            200, {"results": [[["", 4.0]], [["", 5.0]]]})
        body = {"signature_name": "regress_x_to_y", "context": {"x": 8.0}, "examples": [{}]}
        assert rest(server, "POST", f"/v1/models/{TWO_VERSIONS}{path}:regress", body) == (200, {"results": [6.0]})


# ---------------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        # TF Serving's JSON texts (util/json_tensor.cc) and HTTP statuses (http_server.cc ToHTTPStatusCode)
        ("POST", "/v1/models/live:predict", b'{"instances": [1.0,', 400, "JSON Parse error"),
        ("POST", "/v1/models/live:predict", b"", 400, "JSON Parse error: The document is empty"),
        ("POST", "/v1/models/live:predict", [1.0], 400, "Is not object"),
        ("POST", "/v1/models/live:predict", {"instances": [1.0], "inputs": [1.0]}, 400,
         "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
        ("POST", "/v1/models/live:predict", {"instances": []}, 400, "No values in 'instances' array"),
        ("POST", "/v1/models/nope:predict", {"instances": [1.0]}, 404, "Servable not found for request: Latest(nope)"),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("POST", "/v1/models/live/versions/99:predict", {"instances": [1.0]}, 404, "Specific(live, 99)"),
        ("GET", "/v1/models/live/versions/99", None, 404, "Could not find version 99 of model live"),
        ("GET", "/v1/models/live/versions/99999999999999999999", None, 400,
         "Failed to convert version: 99999999999999999999 to numeric."),
        # TF Serving answers INVALID_ARGUMENT for an unknown label and for an unknown signature.
        ("POST", "/v1/models/live/labels/nope:predict", {"instances": [1.0]}, 400,
         "Unrecognized servable version label: nope"),
        ("POST", "/v1/models/live:predict", {"signature_name": "nope", "instances": [1.0]}, 400,
         'Serving signature name: "nope" not found in signature def'),
        ("POST", "/v1/models/live:predict", {"inputs": {"z": [1.0]}}, 400,
         "Missing named input: x in 'inputs' object."),
        ("POST", "/v1/models/live:predict", {"instances": ["a"]}, 400,
         "JSON Value: \"a\" Type: String is not of expected type: float"),
        ("POST", "/v1/models/live:predict", {"instances": [None]}, 400,
         "JSON Value: null Type: Null is not of expected type: float"),
        ("POST", "/v1/models/live:predict", {"inputs": [[1.0], [1.0, 2.0]]}, 400,
         "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
        # :classify works now (classifier.cc), but this TF2 export has no classify-shaped signature:
        # PreProcessClassification finds no "inputs" in serving_default.
        ("POST", "/v1/models/live:classify", {"examples": [{"x": 1.0}]}, 400,
         "No classification inputs found in SignatureDef"),
        ("POST", "/v1/models/live:regress", {"examples": [{"x": 1.0}]}, 400,
         "No regression inputs found in SignatureDef"),
        ("POST", "/v1/models/live:frobnicate", {}, 400, "Malformed request: POST /v1/models/live:frobnicate"),
        # Outside /v1/ no handler is registered: TF Serving's HTTP server answers 404 (with no body; tfzoo's has
        # an error text).
        ("GET", "/elsewhere", None, 404, "Not found"),
    ],
)
def test_rest_errors_as_tf_serving(
    server: ModelServer, method: str, path: str, body: Any, status: int, message: str
) -> None:
    code, answer = rest(server, method, path, body)
    assert (code, list(answer)) == (status, ["error"])
    assert message in answer["error"]
    assert_serving(server)


def test_oversized_body_is_refused(server: ModelServer) -> None:
    body = b'{"instances": [' + b"1.0, " * 10_000_000 + b"1.0]}"  # 50 MB, over the 32 MiB default
    code, answer = rest(server, "POST", "/v1/models/live:predict", body)
    assert code == 413
    assert "limit" in answer["error"]
    assert_serving(server)


def test_broken_version_is_reported_and_others_serve(server: ModelServer) -> None:
    code, answer = rest(server, "GET", "/v1/models/broken")
    assert code == 200
    (status,) = answer["model_version_status"]
    assert (status["version"], status["state"]) == ("7", "END")
    assert status["status"]["error_code"] != "OK"
    assert status["status"]["error_message"]
    assert rest(server, "POST", "/v1/models/broken:predict", {"instances": [1.0]})[0] == 404
    assert_serving(server)


# ------------------------------------------------------------------------------- strings and named inputs

def test_named_inputs_strings_and_b64(server: ModelServer) -> None:
    # Row format needs every input in every row, "offset" too (json_tensor.cc:572 "keys must be equal to"): TF
    # Serving fills no defaults from the Python signature. Each row's scalar offset is batched into a [2] tensor,
    # which this graph broadcasts like the scalar.
    rows = [
        {"text": "ab", "scale": [1, 2], "offset": 0.5},
        {"text": {"b64": base64.b64encode(b"\x00\xff").decode()}, "scale": [3, 4], "offset": 0.5},
    ]
    code, answer = rest(server, "POST", "/v1/models/strings:predict", {"instances": rows})
    assert code == 200, answer
    assert answer == {
        "predictions": [
            {"length": 2, "text_bytes": {"b64": "YWI="}, "upper": "AB", "scaled": [2.5, 4.5]},
            # Only outputs named *_bytes are written as base64 (json_tensor.cc:909); any other string is written
            # as its raw bytes (json_tensor.cc:918), UTF-8 or not: here \x00 (escaped by the JSON writer) and \xff.
            {"length": 2, "text_bytes": {"b64": "AP8="}, "upper": b"\x00\xff".decode("utf-8", "surrogateescape"),
             "scaled": [6.5, 8.5]},
        ]
    }
    columns = {"inputs": {"text": ["x"], "scale": [[1, 1]], "offset": 1.0}}
    assert rest(server, "POST", "/v1/models/strings:predict", columns) == (
        200,
        {"outputs": {"length": [1], "text_bytes": [{"b64": "eA=="}], "upper": ["X"], "scaled": [[3.0, 3.0]]}},
    )
    for body, message in [
        ({"instances": [{"text": "ab", "scale": [1, 2]}]}, "keys must be equal to: offset,scale,text"),
        ({"instances": ["ab"]}, ("instances is a plain list, but expecting list of objects as multiple input "
                                 "tensors required as per tensorinfo_map")),
        ({"inputs": {"text": [1], "scale": [[1, 1]], "offset": 1.0}},
         "JSON Value: 1 Type: Number is not of expected type: string"),
        ({"inputs": {"text": ["a"], "scale": [[1, 1]]}}, "Missing named input: offset in 'inputs' object."),
    ]:
        code, answer = rest(server, "POST", "/v1/models/strings:predict", body)
        assert code == 400 and message in answer["error"], (body, answer)


def test_grpc_bytes_round_trip(channel: grpc.Channel) -> None:
    # every input: a signature without defaults needs them all (predict_util.cc:51 VerifyRequestInputsSize)
    inputs = {"text": np.array([b"\x00ab\x00"], object), "scale": np.ones((1, 2), np.float32),
              "offset": np.float32(0.0)}
    response = grpc_predict(channel, "strings", inputs, output_filter=("text_bytes",))
    assert list(response.outputs) == ["text_bytes"]
    assert tf.make_ndarray(response.outputs["text_bytes"]).tolist() == [b"\x00ab\x00"]


# ------------------------------------------------------------------------------------- new versions

def test_new_version_is_served_without_restart(server: ModelServer, model_base: Path, exports: dict[str, Path]) -> None:
    base = model_base / "live"
    answers: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:  # requests in flight while the versions are swapped must all succeed
        while not stop.is_set():
            answers.append(rest(server, "POST", "/v1/models/live:predict", {"instances": [1.0]})[0])

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        assert rest(server, "POST", "/v1/models/live:predict", {"instances": [3.0]}) == (200, {"predictions": [4.0]})
        # As the exporter does: write beside under a hidden name, then rename into place.
        shutil.copytree(exports["affine_v2"], base / ".2.tmp")
        (base / ".2.tmp").rename(base / "2")
        deadline = time.monotonic() + 15
        while rest(server, "POST", "/v1/models/live:predict", {"instances": [3.0]})[1] != {"predictions": [7.0]}:
            assert time.monotonic() < deadline, "version 2 was not served within 15 s"
            time.sleep(0.1)
    finally:
        stop.set()
        asker.join()
    _, status = rest(server, "GET", "/v1/models/live")
    assert [(s["version"], s["state"]) for s in status["model_version_status"]] == [("2", "AVAILABLE"), ("1", "END")]
    assert answers and set(answers) == {200}


# ---------------------------------------------------------------------------------------------- SIGTERM

@pytest.mark.slow
def test_sigterm_stops_cleanly(tmp_path: Path, exports: dict[str, Path]) -> None:
    shutil.copytree(exports["affine_v1"], tmp_path / "live" / "1")
    config = _write_config(tmp_path / "models.config", [{"name": "live", "base_path": tmp_path / "live"}])
    # tensorflow_model_server's command line (model_servers/main.cc flags), on free ports.
    rest_port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "tfzoo", "serve", f"--model_config_file={config}", f"--port={grpc_port}",
               f"--rest_api_port={rest_port}"]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        lines: queue.Queue[str] = queue.Queue()  # read in a thread, so that a silent server cannot hang the test
        threading.Thread(target=lambda: list(map(lines.put, process.stdout)), daemon=True).start()
        deadline = time.monotonic() + 120  # importing TensorFlow on a busy 2-core machine
        line = ""
        while "REST on" not in line:
            assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                pytest.fail("the server did not print its REST address in time")
        assert int(line.rsplit(":", 1)[1]) == rest_port
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/live", timeout=30) as response:
            assert json.loads(response.read())["model_version_status"][0]["state"] == "AVAILABLE"

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
