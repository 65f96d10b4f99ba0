"""TF Serving's model-server tests, ported onto `tfzoo serve`.

- model_servers/http_rest_api_handler_test.cc: driven through `RestApi.process` in-process (TF Serving's
  HttpRestApiHandler::ProcessRequest), on TensorFlow's half_plus_two built by tests/tfs_models.py and on TF Serving's
  saved_model_half_plus_two_2_versions from the shared test data; a few cases also over real HTTP.
- model_servers/tensorflow_model_server_test.py (with test_util/tensorflow_model_server_test_base.py): a real
  `tfzoo serve` child process started with tensorflow_model_server's flags (RunServer's: --port, --rest_api_port,
  --rest_api_timeout_in_ms, --model_name/--model_base_path or --model_config_file,
  --model_config_file_poll_wait_seconds), gRPC through tensorflow-serving-api's stubs, REST through urllib.
  Cases whose model or flag set would cost one more child process (a TensorFlow import each) run on an in-process
  `ModelServer(ServerOptions(...))`, the same server on real ports.
Each test cites the case it ports. Only what a client can observe is ported: answers, status codes, message
substrings.

Not ported (features tfzoo serve does not have):
- tensorflow_model_server_test.py:582 testPrometheusEndpoint: no metrics endpoint (--monitoring_config_file is
  parsed and checked, nothing is served on its path).
- tensorflow_model_server_test.py:604 testPredictUDS: no --grpc_socket_path (gRPC over a Unix socket).
- tensorflow_model_server_test.py:616 testPredictOnTfLite, :626 testPredictWithSignatureDefOnTfLite: no TFLite
  models (--prefer_tflite_model).
- tensorflow_model_server_test.py:425 testGoodGrpcChannelArgs: no --grpc_channel_arguments flag.
- tensorflow_model_server_test.py:737 test_profiler_service_with_valid_trace_request: no profiler service.
- tensorflow_model_server_test.py:776 test_tf_text: its tf_text_regression fixture needs TF Text's custom ops
  (not installed) and is not in the shared test data.
- tensorflow_model_server_test.py:705 test_distrat_sequential_keras_saved_model_save: it needs two virtual CPU
  devices configured before TensorFlow starts in the test process (here TensorFlow is started by the other tests);
  serving a Keras export is ported by test_sequential_keras_saved_model_save.
- tensorflow_model_server_test.py:256 _TestBadModel / :273 _TestBadModelUpconvertedSavedModel: not run by TF
  Serving either (leading underscore: never collected), and its FAILED_PRECONDITION dates from SessionBundle
  up-conversion. A version that fails to load is covered by test_serving_server.py
  (test_broken_version_is_reported_and_others_serve).
- tensorflow_model_server_test_base.py:_TestPredict's batching_parameters_file: --enable_batching is accepted and
  its file checked, but requests run unbatched; only that the flags are accepted is tested
  (test_batching_flags_are_accepted).
- http_rest_api_handler_test.cc: the `headers` out-parameter is checked over real HTTP (Content-Type); `model_name`
  and `method` out-parameters are C++ plumbing for metrics.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tfs_models
from conftest import TF_SERVING_TESTDATA
from google.protobuf import any_pb2, json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from tfzoo.cli import main
from tfzoo.serving.http_server import HttpOptions, HttpServer
from tfzoo.serving.manager import ModelManager, model_config
from tfzoo.serving.rest import RestApi, error_response
from tfzoo.serving.options import DEFAULT_MAX_REQUEST_BYTES
from tfzoo.serving.server import ModelServer, ServerOptions, server_process

TESTDATA = TF_SERVING_TESTDATA
HALF_PLUS_TWO = TESTDATA / "saved_model_half_plus_two_cpu"  # _GetSavedModelBundlePath
HALF_PLUS_THREE = TESTDATA / "saved_model_half_plus_three"  # _GetSavedModelHalfPlusThreePath
TWO_VERSIONS = "saved_model_half_plus_two_2_versions"  # kTestModelName of http_rest_api_handler_test.cc
VERSION = 123  # kTestModelVersion1, and the version of every TF Serving fixture
LABEL = "Version_Label"  # kTestModelVersionLabel
MISSING_LABEL = "Version_Nonexistent"  # kNonexistentModelVersionLabel
RPC_TIMEOUT = 20.0  # tensorflow_model_server_test.py's
RELOAD_DEADLINE = 30.0  # seconds a config change may take to be served (TF Serving's test sleeps 10)



# ================================================================================================= helpers

def grpc_stubs(port: int) -> tuple[grpc.Channel, prediction_service_pb2_grpc.PredictionServiceStub,
                                   model_service_pb2_grpc.ModelServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return (channel, prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel))


def predict_request(model_name: str = "default", *, signature_name: str = "serving_default",
                    specify_output: bool = True, batch_input: bool = False, input_key: str = "x",
                    output_key: str = "y") -> predict_pb2.PredictRequest:
    """VerifyPredictRequest's request (tensorflow_model_server_test_base.py:251): x = [2.0] (or [[2.0]])."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs[input_key].dtype = types_pb2.DT_FLOAT
    request.inputs[input_key].float_val.append(2.0)
    request.inputs[input_key].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs[input_key].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append(output_key)
    return request


def verify_predict(stub: prediction_service_pb2_grpc.PredictionServiceStub, expected_output: float,
                   expected_version: int, *, output_key: str = "y", **options: Any) -> None:
    """VerifyPredictRequest's checks (tensorflow_model_server_test_base.py:251): one DT_FLOAT in float_val, and
    the model spec echoed with the version that answered."""
    request = predict_request(output_key=output_key, **options)
    result = stub.Predict(request, RPC_TIMEOUT)
    assert output_key in result.outputs
    assert result.outputs[output_key].dtype == types_pb2.DT_FLOAT
    assert list(result.outputs[output_key].float_val) == [expected_output]
    verify_model_spec(result.model_spec, request.model_spec.name, request.model_spec.signature_name,
                      expected_version)


def verify_model_spec(spec, name: str, signature_name: str, version: int) -> None:
    """_VerifyModelSpec (tensorflow_model_server_test_base.py:351)."""
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature_name, version)


def call_rest(url: str, body: Any = None) -> tuple[int, str, Any]:
    """(HTTP status, Content-Type, parsed JSON) of one call; POST when there is a body, as CallREST does."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=RPC_TIMEOUT) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], json.loads(error.read())


def sorted_object(obj: Any) -> Any:
    """SortedObject (tensorflow_model_server_test_base.py:110): nested lists and dicts in a canonical order."""
    if isinstance(obj, dict):
        return sorted((key, sorted_object(value)) for key, value in obj.items())
    if isinstance(obj, (list, tuple)):
        return sorted((sorted_object(item) for item in obj), key=repr)
    return obj


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def wait_until(condition: Callable[[], bool], what: str, deadline: float = RELOAD_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"{what} did not happen within {deadline} s"
        time.sleep(0.2)


def serves(stub: prediction_service_pb2_grpc.PredictionServiceStub, model_name: str) -> bool:
    """Whether `model_name` answers a Predict (False on NOT_FOUND, the answer for a model not served)."""
    try:
        stub.Predict(predict_request(model_name, specify_output=False), RPC_TIMEOUT)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise
    return True


CONFIG_TEMPLATE = """
model_config_list: {{
  config: {{
    name: "{name}",
    base_path: "{model_path}",
    model_platform: "tensorflow"
  }}
}}
"""  # testModelConfigReload's base_config_proto (tensorflow_model_server_test.py:318)


def good_model_config() -> str:
    """__BuildModelConfigFile (tensorflow_model_server_test.py:70): good_model_config.txt with the paths filled in."""
    return ((TESTDATA / "good_model_config.txt").read_text()
            .replace("${TEST_HALF_PLUS_TWO_DIR}", str(HALF_PLUS_TWO))
            .replace("${TEST_HALF_PLUS_THREE_DIR}", str(HALF_PLUS_THREE)))


def write_atomically(path: Path, text: str) -> None:
    # A poller must never read a half-written config (TF Serving's test writes in place; its poller reads the
    # file whole, so it can read an empty one too).
    scratch = path.with_suffix(".tmp")
    scratch.write_text(text)
    os.replace(scratch, path)


# ========================================================================= http_rest_api_handler_test.cc

@pytest.fixture(scope="module", params=["built", "tf_serving_testdata"])
def handler_base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions (123, 124) of half_plus_two: tfs_models' build of TensorFlow's cc/saved_model/testdata/
    half_plus_two (kTestModelBasePath) copied to both, or TF Serving's saved_model_half_plus_two_2_versions."""
    if request.param == "tf_serving_testdata":
        return TESTDATA / TWO_VERSIONS
    base = tmp_path_factory.mktemp("half_plus_two")
    tfs_models.half_plus_two(base / str(VERSION))
    shutil.copytree(base / str(VERSION), base / str(VERSION + 1))
    return base


@pytest.fixture(scope="module")
def handler_manager(handler_base: Path) -> Iterator[ModelManager]:
    """CreateServerCore (http_rest_api_handler_test.cc:83): the model under kTestModelName with a specific-version
    policy for 123, then a ReloadConfig adding the label Version_Label -> 123."""
    config = model_config(TWO_VERSIONS, handler_base)
    config.model_version_policy.specific.versions.append(VERSION)
    manager = ModelManager([config])
    manager.refresh()
    labelled = model_server_config_pb2.ModelConfig()
    labelled.CopyFrom(config)
    labelled.version_labels[LABEL] = VERSION
    manager.reload_config([labelled])
    yield manager
    manager.unload_all()


@pytest.fixture(scope="module")
def handler(handler_manager: ModelManager) -> RestApi:
    return RestApi(handler_manager)


@pytest.fixture(scope="module")
def http_handler(handler_manager: ModelManager) -> Iterator[str]:
    """The same handler behind tfzoo serve's HTTP server on a free port: its base URL."""
    server = HttpServer(RestApi(handler_manager).handle, error_response, "127.0.0.1", 0,
                        HttpOptions(max_body_bytes=DEFAULT_MAX_REQUEST_BYTES))
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def process(handler: RestApi, method: str, path: str, body: str = "") -> tuple[int, Any]:
    """ProcessRequest: (HTTP status, parsed JSON output)."""
    status, output = handler.process(method, path, body)
    return status, json.loads(output)


def error_of(handler: RestApi, method: str, path: str, body: str = "") -> tuple[int, str]:
    """(HTTP status, the "error" text) of a failing ProcessRequest (GetJsonErrorMsg)."""
    status, output = process(handler, method, path, body)
    assert list(output) == ["error"] and isinstance(output["error"], str), output
    return status, output["error"]


# http_rest_api_handler_test.cc:173 kPathRegex: /v1/models is the API's (an API error), other paths are not
# (tfzoo answers 404, as TF Serving's HTTP server does for a path no handler is registered for).
def test_handler_path_regex(handler: RestApi) -> None:
    assert error_of(handler, "GET", "/v1/models") == (400, "Missing model name in request.")
    for path in ("/statuspage", "/index"):
        status, message = error_of(handler, "GET", path)
        assert status == 404 and "Malformed request" not in message


# http_rest_api_handler_test.cc:179 UnsupportedApiCalls (every case INVALID_ARGUMENT, HTTP 400)
@pytest.mark.parametrize(("method", "path", "message"), [
    ("GET", "/v1/foo", "Malformed request"),
    ("POST", "/v1/foo", "Malformed request"),
    ("GET", "/v1/models", "Missing model name"),
    ("GET", "/v1/models/debug/model_name", "Malformed request"),
    ("POST", "/v1/models", "Malformed request"),
    ("GET", "/v1/models/foo:predict", "Malformed request"),
    ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
    ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
    ("POST", f"/v1/models/foo/versions/{2**64 - 1}:regress", "Failed to convert version"),
    ("POST", "/v1/models/foo/metadata", "Malformed request"),
    ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
])
def test_handler_unsupported_api_calls(handler: RestApi, method: str, path: str, message: str) -> None:
    status, error = error_of(handler, method, path)
    assert status == 400
    assert message in error


# http_rest_api_handler_test.cc:260 PredictModelNameVersionErrors (NOT_FOUND, HTTP 404)
@pytest.mark.parametrize("path", [
    "/v1/models/foo:predict",
    "/v1/models/foo/versions/50:predict",
    f"/v1/models/{TWO_VERSIONS}99:predict",  # sic: the C++ test forgets the "/versions/"; still NOT_FOUND
    f"/v1/models/{TWO_VERSIONS}/versions/{VERSION + 1}:predict",  # on disk, but not in the specific policy
])
def test_handler_predict_model_name_version_errors(handler: RestApi, path: str) -> None:
    status, error = error_of(handler, "POST", path, '{ "instances": [1] }')
    assert status == 404
    assert "Servable not found for request" in error


# http_rest_api_handler_test.cc:283 PredictRequestErrors (INVALID_ARGUMENT, HTTP 400)
@pytest.mark.parametrize(("path", "body", "message"), [
    (":predict", "", "JSON Parse error: The document is empty"),
    (":predict", "instances = [1, 2]", "JSON Parse error: Invalid value"),
    (":predict", '{ "instances": ["x", "y"] }', "not of expected type: float"),
    # the label is resolved before the body is read: the label's error, not the type's
    (f"/labels/{MISSING_LABEL}:predict", '{ "instances": ["x", "y"] }', "Unrecognized servable version label"),
    (":predict", '{ "signature_name": 100 }', "'signature_name' key must be a string value."),
])
def test_handler_predict_request_errors(handler: RestApi, path: str, body: str, message: str) -> None:
    status, error = error_of(handler, "POST", f"/v1/models/{TWO_VERSIONS}{path}", body)
    assert status == 400
    assert message in error


# http_rest_api_handler_test.cc:330 Predict
@pytest.mark.parametrize(("path", "body", "expected"), [
    (":predict", '{"instances": [[1.0, 2.0], [3.0, 4.0]]}', {"predictions": [[2.5, 3.0], [3.5, 4.0]]}),
    (f"/versions/{VERSION}:predict", '{"instances": [1.0, 2.0]}', {"predictions": [2.5, 3.0]}),
    (f"/labels/{LABEL}:predict", '{"instances": [1.0, 2.0]}', {"predictions": [2.5, 3.0]}),
    (f"/versions/{VERSION}:predict", '{"signature_name": "serving_default", "instances": [3.0, 4.0]}',
     {"predictions": [3.5, 4.0]}),
    (f"/versions/{VERSION}:predict", '{"signature_name": "serving_default", "inputs": [3.0, 4.0]}',
     {"outputs": [3.5, 4.0]}),
])
def test_handler_predict(handler: RestApi, path: str, body: str, expected: dict) -> None:
    assert process(handler, "POST", f"/v1/models/{TWO_VERSIONS}{path}", body) == (200, expected)


# http_rest_api_handler_test.cc:387 Regress (0.5 * 80 + 2 = 42)
@pytest.mark.parametrize("path", [":regress", f"/versions/{VERSION}:regress", f"/labels/{LABEL}:regress"])
def test_handler_regress(handler: RestApi, path: str) -> None:
    body = '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }'
    assert process(handler, "POST", f"/v1/models/{TWO_VERSIONS}{path}", body) == (200, {"results": [42]})


# http_rest_api_handler_test.cc:423 Classify (scores only: the label is "")
@pytest.mark.parametrize(("path", "x", "score"), [(":classify", 20.0, 12), (f"/labels/{LABEL}:classify", 10.0, 7)])
def test_handler_classify(handler: RestApi, path: str, x: float, score: float) -> None:
    body = f'{{"signature_name": "classify_x_to_y", "examples": [ {{ "x": {x} }} ] }}'
    assert process(handler, "POST", f"/v1/models/{TWO_VERSIONS}{path}", body) == (200, {"results": [[["", score]]]})


STATUS_123 = {"model_version_status": [{"version": "123", "state": "AVAILABLE",
                                        "status": {"error_code": "OK", "error_message": ""}}]}


# http_rest_api_handler_test.cc:448 GetStatus (only 123: the specific policy never loads 124)
@pytest.mark.parametrize("path", ["", f"/versions/{VERSION}", f"/labels/{LABEL}"])
def test_handler_get_status(handler: RestApi, path: str) -> None:
    assert process(handler, "GET", f"/v1/models/{TWO_VERSIONS}{path}") == (200, STATUS_123)


def two_versions_metadata(handler_base: Path) -> dict:
    """saved_model_half_plus_two_2_versions_metadata.json, the answer for version 123. tfs_models' build feeds
    tf.Examples through a rank-1 placeholder where TensorFlow's generator left the rank unknown; its metadata says
    so, and is otherwise the same."""
    expected = json.loads((TESTDATA / f"{TWO_VERSIONS}_metadata.json").read_text())
    if handler_base != TESTDATA / TWO_VERSIONS:
        for signature in expected["metadata"]["signature_def"]["signature_def"].values():
            for info in signature["inputs"].values():
                if info["name"] == "tf_example:0":
                    info["tensor_shape"] = {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    return expected


# http_rest_api_handler_test.cc:515 GetModelMetadata
def test_handler_get_model_metadata(handler: RestApi, handler_base: Path) -> None:
    assert process(handler, "GET", f"/v1/models/{TWO_VERSIONS}/metadata") == (200, two_versions_metadata(handler_base))


# http_rest_api_handler_test.cc:330 Predict, :387 Regress, :423 Classify, :448 GetStatus, :260 and :283 errors,
# over real HTTP: the same answers, with the header list the C++ test expects (Content-Type: application/json).
@pytest.mark.parametrize(("path", "body", "status", "expected"), [
    (f"/labels/{LABEL}:predict", {"instances": [1.0, 2.0]}, 200, {"predictions": [2.5, 3.0]}),
    (":regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]}, 200, {"results": [42]}),
    (":classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 20.0}]}, 200, {"results": [[["", 12]]]}),
    (f"/versions/{VERSION}", None, 200, STATUS_123),
    ("99:predict", {"instances": [1]}, 404, "Servable not found for request"),
    (f"/labels/{MISSING_LABEL}:predict", {"instances": ["x", "y"]}, 400, "Unrecognized servable version label"),
])
def test_rest_api_over_http(http_handler: str, path: str, body: Any, status: int, expected: Any) -> None:
    code, content_type, answer = call_rest(f"{http_handler}/v1/models/{TWO_VERSIONS}{path}", body)
    assert (code, content_type) == (status, "application/json")
    if status == 200:
        assert answer == expected
    else:
        assert list(answer) == ["error"] and expected in answer["error"]


# =================================================================== tensorflow_model_server_test.py

@pytest.fixture(scope="module")
def default_server() -> Iterator[tuple[int, int]]:
    """RunServer('default', _GetSavedModelBundlePath()) (tensorflow_model_server_test_base.py:138): `tfzoo serve` in
    a child process with its flags; yields (REST port, gRPC port)."""
    with server_process("--model_name=default", f"--model_base_path={HALF_PLUS_TWO}",
                        "--rest_api_timeout_in_ms=5000") as ports:
        yield ports


@pytest.fixture(scope="module")
def default_stubs(default_server: tuple[int, int]) -> Iterator[tuple]:
    channel, prediction, model = grpc_stubs(default_server[1])
    yield prediction, model
    channel.close()


@pytest.fixture(scope="module")
def default_rest(default_server: tuple[int, int]) -> str:
    return f"http://127.0.0.1:{default_server[0]}"


# tensorflow_model_server_test_base.py:71 WaitForServerReady: a request for a missing model is answered, and its
# details contain 'Servable'.
def test_missing_model_is_answered_with_servable_not_found(default_stubs: tuple) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "intentionally_missing_model"
    error = rpc_error(lambda: default_stubs[0].Predict(request, RPC_TIMEOUT))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable" in error.details()


# tensorflow_model_server_test.py:97 testGetModelStatus
def test_get_model_status(default_stubs: tuple) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    result = default_stubs[1].GetModelStatus(request, RPC_TIMEOUT)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == VERSION
    assert result.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert result.model_version_status[0].status.error_code == 0


# tensorflow_model_server_test.py:116 testGetModelMetadata (and the SignatureDefMap it packs is TF Serving's own
# answer, half_plus_two_model_metadata.json)
def test_get_model_metadata(default_stubs: tuple) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    result = default_stubs[0].GetModelMetadata(request, RPC_TIMEOUT)
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == VERSION
    assert len(result.metadata) == 1
    assert "signature_def" in result.metadata
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert result.metadata["signature_def"].Unpack(signatures)
    expected = get_model_metadata_pb2.SignatureDefMap()
    json_format.ParseDict(json.loads((TESTDATA / "half_plus_two_model_metadata.json").read_text())
                          ["metadata"]["signature_def"], expected)
    assert signatures == expected


def _classify(stub: prediction_service_pb2_grpc.PredictionServiceStub, model_name: str = "default"
              ) -> classification_pb2.ClassificationResponse:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    result = stub.Classify(request, RPC_TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    verify_model_spec(result.model_spec, model_name, "classify_x_to_y", VERSION)
    return result


def _regress(stub: prediction_service_pb2_grpc.PredictionServiceStub, model_name: str = "default") -> None:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    result = stub.Regress(request, RPC_TIMEOUT)
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    verify_model_spec(result.model_spec, model_name, "regress_x_to_y", VERSION)


def _multi_inference(stub: prediction_service_pb2_grpc.PredictionServiceStub, model_name: str = "default") -> None:
    request = inference_pb2.MultiInferenceRequest()
    for signature_name, method_name in (("regress_x_to_y", "tensorflow/serving/regress"),
                                        ("classify_x_to_y", "tensorflow/serving/classify")):
        task = request.tasks.add()
        task.model_spec.name = model_name
        task.model_spec.signature_name = signature_name
        task.method_name = method_name
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    result = stub.MultiInference(request, RPC_TIMEOUT)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for task, task_result in zip(request.tasks, result.results):
        verify_model_spec(task_result.model_spec, task.model_spec.name, task.model_spec.signature_name, VERSION)


# tensorflow_model_server_test.py:165 testClassify (TF1 model)
def test_classify(default_stubs: tuple) -> None:
    _classify(default_stubs[0])


# tensorflow_model_server_test.py:199 testRegress (TF1 model)
def test_regress(default_stubs: tuple) -> None:
    _regress(default_stubs[0])


# tensorflow_model_server_test.py:244 testMultiInference (TF1 model)
def test_multi_inference(default_stubs: tuple) -> None:
    _multi_inference(default_stubs[0])


# tensorflow_model_server_test.py:252 testPredictSavedModel (_TestPredict: with and without the output filter)
@pytest.mark.parametrize("specify_output", [True, False])
def test_predict_saved_model(default_stubs: tuple, specify_output: bool) -> None:
    verify_predict(default_stubs[0], 3.0, VERSION, specify_output=specify_output)


# tensorflow_model_server_test.py:439 testClassifyREST
def test_classify_rest(default_rest: str) -> None:
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert call_rest(f"{default_rest}/v1/models/default:classify", body) == (
        200, "application/json", {"results": [[["", 3.0]]]})


# tensorflow_model_server_test.py:459 testRegressREST
def test_regress_rest(default_rest: str) -> None:
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert call_rest(f"{default_rest}/v1/models/default:regress", body) == (
        200, "application/json", {"results": [3.0]})


# tensorflow_model_server_test.py:479 testPredictREST
def test_predict_rest(default_rest: str) -> None:
    assert call_rest(f"{default_rest}/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]}) == (
        200, "application/json", {"predictions": [3.0, 3.5, 4.0]})


# tensorflow_model_server_test.py:500 testPredictColumnarREST
def test_predict_columnar_rest(default_rest: str) -> None:
    assert call_rest(f"{default_rest}/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]}) == (
        200, "application/json", {"outputs": [3.0, 3.5, 4.0]})


# tensorflow_model_server_test.py:521 testGetStatusREST
def test_get_status_rest(default_rest: str) -> None:
    assert call_rest(f"{default_rest}/v1/models/default") == (200, "application/json", STATUS_123)


# tensorflow_model_server_test.py:550 testGetModelMetadataREST (compared as SortedObject)
def test_get_model_metadata_rest(default_rest: str) -> None:
    code, _, answer = call_rest(f"{default_rest}/v1/models/default/metadata")
    expected = json.loads((TESTDATA / "half_plus_two_model_metadata.json").read_text())
    assert code == 200
    assert sorted_object(answer) == sorted_object(expected)


# --enable_serialization_as_tensor_content (main.cc:312, server.cc:327): Predict's outputs in tensor_content
# (predict_util.cc:183 kAsProtoContent) instead of the typed fields of the default (predict_util.cc:177
# kAsProtoField); REST answers are the same JSON either way.
def test_serialization_as_tensor_content_vs_typed_fields(default_stubs: tuple, default_rest: str) -> None:
    request = predict_request(specify_output=False)
    request.inputs["x"].float_val[:] = [2.0, 3.0]
    request.inputs["x"].tensor_shape.dim[0].size = 2
    typed = default_stubs[0].Predict(request, RPC_TIMEOUT).outputs["y"]
    assert list(typed.float_val) == [3.0, 3.5] and typed.tensor_content == b""

    options = ServerOptions(model_name="default", model_base_path=str(HALF_PLUS_TWO), port=0, rest_api_port=0,
                            enable_serialization_as_tensor_content=True)
    with ModelServer(options) as server:
        channel, stub, _ = grpc_stubs(server.port)
        with channel:
            content = stub.Predict(request, RPC_TIMEOUT).outputs["y"]
        rest_answer = call_rest(f"http://127.0.0.1:{server.rest_api_port}/v1/models/default:predict",
                                {"instances": [2.0, 3.0]})
    assert list(content.float_val) == []
    assert content.tensor_content == np.array([3.0, 3.5], np.float32).tobytes()
    assert (content.dtype, content.tensor_shape) == (typed.dtype, typed.tensor_shape)
    assert tf.make_ndarray(content).tolist() == tf.make_ndarray(typed).tolist()
    assert rest_answer == call_rest(f"{default_rest}/v1/models/default:predict", {"instances": [2.0, 3.0]})


# ------------------------------------------------------------------------------------- model config files

@pytest.fixture(scope="module")
def config_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Path]]:
    """RunServer(None, None, model_config_file=good_model_config.conf, model_config_file_poll_period=1): yields
    (REST port, gRPC port, the config file)."""
    config = tmp_path_factory.mktemp("config") / "good_model_config.conf"
    config.write_text(good_model_config())
    with server_process(f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1") as (rest, port):
        yield rest, port, config


@pytest.fixture(scope="module")
def config_stub(config_server: tuple[int, int, Path]) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    channel, stub, _ = grpc_stubs(config_server[1])
    yield stub
    channel.close()


# tensorflow_model_server_test.py:277 testGoodModelConfig
def test_good_model_config(config_stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    for specify_output in (True, False):
        verify_predict(config_stub, 3.0, VERSION, model_name="half_plus_two", specify_output=specify_output)
        verify_predict(config_stub, 4.0, VERSION, model_name="half_plus_three", specify_output=specify_output)


# tensorflow_model_server_test.py:315 testModelConfigReload: with --model_config_file_poll_wait_seconds=1 a
# rewritten config is served (here: half_plus_three only, so half_plus_two is unloaded); then the good config again.
def test_model_config_reload(config_server: tuple[int, int, Path],
                             config_stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    config = config_server[2]
    assert serves(config_stub, "half_plus_two")
    write_atomically(config, CONFIG_TEMPLATE.format(name="half_plus_three", model_path=HALF_PLUS_THREE))
    try:
        wait_until(lambda: not serves(config_stub, "half_plus_two"), "unloading half_plus_two")
        wait_until(lambda: serves(config_stub, "half_plus_three"), "serving half_plus_three")
        verify_predict(config_stub, 4.0, VERSION, model_name="half_plus_three", specify_output=False)
    finally:
        write_atomically(config, good_model_config())
    wait_until(lambda: serves(config_stub, "half_plus_two"), "serving half_plus_two again")
    verify_predict(config_stub, 3.0, VERSION, model_name="half_plus_two", specify_output=False)
    verify_predict(config_stub, 4.0, VERSION, model_name="half_plus_three", specify_output=False)


# tensorflow_model_server_test.py:370 testModelConfigReloadWithZeroPollPeriod: the config file is read once.
def test_model_config_reload_with_zero_poll_period(tmp_path: Path) -> None:
    config = tmp_path / "model_config.txt"
    config.write_text(CONFIG_TEMPLATE.format(name="half_plus_two", model_path=HALF_PLUS_TWO))
    poll_period = 0
    options = ServerOptions(model_config_file=str(config), model_config_file_poll_wait_seconds=poll_period, port=0)
    with ModelServer(options) as server:
        channel, stub, _ = grpc_stubs(server.port)
        with channel:
            verify_predict(stub, 3.0, VERSION, model_name="half_plus_two", specify_output=False)
            write_atomically(config, CONFIG_TEMPLATE.format(name="half_plus_three", model_path=HALF_PLUS_THREE))
            time.sleep(poll_period + 1)
            verify_predict(stub, 3.0, VERSION, model_name="half_plus_two", specify_output=False)
            assert not serves(stub, "half_plus_three")


# tensorflow_model_server_test.py:300 testBadModelConfig: the server refuses to start, naming the config's type.
def test_bad_model_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", f"--model_config_file={TESTDATA / 'bad_model_config.txt'}", "--port=1"]) != 0
    error = capsys.readouterr().err
    assert "bad_model_config.txt" in error
    assert "tensorflow.serving.ModelServerConfig" in error


# tensorflow_model_server_test.py:309 testBadModelConfig's exact text.
def test_bad_model_config_message_is_tf_servings(capsys: pytest.CaptureFixture[str]) -> None:
    main(["serve", f"--model_config_file={TESTDATA / 'bad_model_config.txt'}", "--port=1"])
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in capsys.readouterr().err


# ------------------------------------------------------------------------ ModelService.HandleReloadConfigRequest

def _config_list(*models: tuple[str, Path], labels: dict[str, int] | None = None
                 ) -> model_management_pb2.ReloadConfigRequest:
    request = model_management_pb2.ReloadConfigRequest()
    for name, path in models:
        config = request.config.model_config_list.config.add(name=name, base_path=str(path),
                                                             model_platform="tensorflow")
        config.version_labels.update(labels or {})
    return request


# model_service_impl.cc:44 HandleReloadConfigRequest: a ModelConfigList replaces the served models (ServerCore::
# ReloadConfig: added ones are loaded, removed ones unloaded, labels take effect); the answer's status is OK.
def test_handle_reload_config_request() -> None:
    with ModelServer(ServerOptions(model_name="half_plus_two", model_base_path=str(HALF_PLUS_TWO), port=0)) as server:
        channel, prediction, model = grpc_stubs(server.port)
        with channel:
            response = model.HandleReloadConfigRequest(
                _config_list(("half_plus_two", HALF_PLUS_TWO), ("half_plus_three", HALF_PLUS_THREE)), RPC_TIMEOUT)
            assert response.status.error_code == 0
            verify_predict(prediction, 3.0, VERSION, model_name="half_plus_two")
            verify_predict(prediction, 4.0, VERSION, model_name="half_plus_three")

            response = model.HandleReloadConfigRequest(
                _config_list(("half_plus_three", HALF_PLUS_THREE), labels={"stable": VERSION}), RPC_TIMEOUT)
            assert response.status.error_code == 0
            assert not serves(prediction, "half_plus_two")
            request = predict_request("half_plus_three")
            request.model_spec.version_label = "stable"
            assert prediction.Predict(request, RPC_TIMEOUT).model_spec.version.value == VERSION


# model_service_impl.cc:66 HandleReloadConfigRequest: any other ServerModelConfig kind is INVALID_ARGUMENT;
# server_core.cc:124 ValidateModelConfigList: a model listed twice is refused (and nothing changes).
def test_handle_reload_config_request_errors() -> None:
    with ModelServer(ServerOptions(model_name="half_plus_two", model_base_path=str(HALF_PLUS_TWO), port=0)) as server:
        channel, prediction, model = grpc_stubs(server.port)
        with channel:
            request = model_management_pb2.ReloadConfigRequest()
            request.config.custom_model_config.CopyFrom(any_pb2.Any())
            error = rpc_error(lambda: model.HandleReloadConfigRequest(request, RPC_TIMEOUT))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "Only ModelConfigList is currently supported" in error.details()

            twice = _config_list(("half_plus_three", HALF_PLUS_THREE), ("half_plus_three", HALF_PLUS_THREE))
            error = rpc_error(lambda: model.HandleReloadConfigRequest(twice, RPC_TIMEOUT))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "Illegal to list model half_plus_three multiple times in config list" in error.details()
            verify_predict(prediction, 3.0, VERSION, model_name="half_plus_two")
            assert not serves(prediction, "half_plus_three")


# server_core.cc:574 UpdateModelVersionLabelMap: a label naming a version that is not available is refused
# (FAILED_PRECONDITION), unless --allow_version_labels_for_unavailable_models.
def test_handle_reload_config_request_label_for_unavailable_version() -> None:
    with ModelServer(ServerOptions(model_name="half_plus_two", model_base_path=str(HALF_PLUS_TWO), port=0)) as server:
        channel, _, model = grpc_stubs(server.port)
        with channel:
            request = _config_list(("half_plus_two", HALF_PLUS_TWO), labels={"stable": 999})
            error = rpc_error(lambda: model.HandleReloadConfigRequest(request, RPC_TIMEOUT))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert ("Request to assign label to version 999 of model half_plus_two, which is not currently available "
                    "for inference") in error.details()


# tensorflow_model_server_test_base.py:218 RunServer(batching_parameters_file=...): --enable_batching with TF
# Serving's batching_config.txt starts and serves (tfzoo runs the requests unbatched).
def test_batching_flags_are_accepted() -> None:
    options = ServerOptions(model_name="default", model_base_path=str(HALF_PLUS_TWO), port=0, enable_batching=True,
                            batching_parameters_file=str(TESTDATA / "batching_config.txt"))
    with ModelServer(options) as server:
        channel, stub, _ = grpc_stubs(server.port)
        with channel:
            verify_predict(stub, 3.0, VERSION)


# ------------------------------------------------------------------------------------------ TF2 exports

class _HalfPlusTwoTf2(tf.Module):
    """A TF2 half_plus_two (TF Serving's saved_model_half_plus_two_tf2_cpu is not in the shared data): y = 0.5x + 2
    with the TF1 fixture's signature names; classify/regress parse tf.Examples with float feature "x"."""

    def __init__(self) -> None:
        super().__init__()
        self.a = tf.Variable(0.5)
        self.b = tf.Variable(2.0)

    def _from_examples(self, examples: tf.Tensor) -> tf.Tensor:
        x = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        return self.a * x + self.b

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")], autograph=False)
    def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")], autograph=False)
    def classify(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scores": self._from_examples(inputs)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")], autograph=False)
    def regress(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"outputs": self._from_examples(inputs)}


def _save_half_plus_two_tf2(export_path: Path) -> None:
    module = _HalfPlusTwoTf2()
    tf.saved_model.save(module, str(export_path), signatures={
        "serving_default": module.predict, "classify_x_to_y": module.classify, "regress_x_to_y": module.regress})


def _save_tf_saved_model(export_path: Path) -> None:
    # test_tf_saved_model_save: y = v1 * v2 * x, of any shape
    root = tf.train.Checkpoint()
    root.v1 = tf.Variable(3.0)
    root.v2 = tf.Variable(2.0)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x}, autograph=False)
    tf.saved_model.save(root, str(export_path), root.f.get_concrete_function(tf.TensorSpec(None, tf.float32)))


def _save_multiple_signatures(export_path: Path) -> None:
    # test_tf_saved_model_save_multiple_signatures: serving_default answers 1, custom_signature_key 2
    root = tf.train.Checkpoint()
    root.f = tf.function(lambda x: {"y": 1.0}, input_signature=[tf.TensorSpec(None, tf.float32)], autograph=False)
    root.g = tf.function(lambda x: {"y": 2.0}, input_signature=[tf.TensorSpec(None, tf.float32)], autograph=False)
    tf.saved_model.save(root, str(export_path), signatures={"serving_default": root.f, "custom_signature_key": root.g})


def _save_keras_sequential(export_path: Path) -> None:
    # test_sequential_keras_saved_model_save: Input "x" (1,) then an identity Lambda "y"
    import keras
    model = keras.Sequential([keras.Input(shape=(1,), name="x", dtype="float32"),
                              keras.layers.Lambda(lambda x: x, name="y")])
    tf.saved_model.save(model, str(export_path))


TF2_MODELS = {"default": _save_half_plus_two_tf2, "tf_saved_model_save": _save_tf_saved_model,
              "multiple_signatures": _save_multiple_signatures, "keras_sequential": _save_keras_sequential}


@pytest.fixture(scope="module")
def tf2_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    """The TF2 exports, each as TF Serving's tests write it (base_path/00000123), served by an in-process
    ModelServer from a --model_config_file (TF Serving's tests start one server per export)."""
    root = tmp_path_factory.mktemp("tf2")
    config = model_server_config_pb2.ModelServerConfig()
    for name, save in TF2_MODELS.items():
        save(root / name / "00000123")
        config.model_config_list.config.add(name=name, base_path=str(root / name), model_platform="tensorflow")
    (root / "models.config").write_text(str(config))
    with ModelServer(ServerOptions(model_config_file=str(root / "models.config"), port=0)) as server:
        channel, stub, _ = grpc_stubs(server.port)
        yield stub
        channel.close()


# tensorflow_model_server_test.py:169 testClassifyTf2
def test_classify_tf2(tf2_stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    _classify(tf2_stub)


# tensorflow_model_server_test.py:203 testRegressTf2
def test_regress_tf2(tf2_stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    _regress(tf2_stub)


# tensorflow_model_server_test.py:248 testMultiInferenceTf2 (each TF2 signature has its own input placeholder:
# the examples are fed to both, as TF Serving feeds its input_tensor_name_set)
def test_multi_inference_tf2(tf2_stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    _multi_inference(tf2_stub)


# tensorflow_model_server_test.py:636 test_tf_saved_model_save (3 * 2 * 2 = 12)
def test_tf_saved_model_save(tf2_stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    verify_predict(tf2_stub, 12.0, VERSION, model_name="tf_saved_model_save", specify_output=False)


# tensorflow_model_server_test.py:655 test_tf_saved_model_save_multiple_signatures
def test_tf_saved_model_save_multiple_signatures(tf2_stub: prediction_service_pb2_grpc.PredictionServiceStub
                                                 ) -> None:
    verify_predict(tf2_stub, 2.0, VERSION, model_name="multiple_signatures", signature_name="custom_signature_key")
    verify_predict(tf2_stub, 1.0, VERSION, model_name="multiple_signatures")


# tensorflow_model_server_test.py:681 test_sequential_keras_saved_model_save. Keras 3 names the signature's
# tensors "inputs" and "output_0" where tf.keras 2 used the Input's and the last layer's names ("x", "y").
def test_sequential_keras_saved_model_save(tf2_stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    verify_predict(tf2_stub, 2.0, VERSION, model_name="keras_sequential", batch_input=True, specify_output=False,
                   input_key="inputs", output_key="output_0")
