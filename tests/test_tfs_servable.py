"""TF Serving's own expectations for Predict, Classify, Regress, MultiInference, GetModelMetadata and warm-up,
ported from its C++ tests (tensorflow_serving/servables/tensorflow/*_test.cc) onto tfzoo.serving.servable
(TF Serving's RunPredict/RunClassify/... on one loaded SavedModel) and tfzoo.serving.manager (ServerCore).

The C++ tests run TensorFlow's half_plus_two, TF Serving's counter export, or fake sessions; here every model is
a real tiny TF1 SavedModel from tests/tfs_models.py, and a few cases also run on TF Serving's own exports from
the shared test data (skipped when it is absent). Only what a caller can observe is ported: results, status
codes and message substrings.

Not ported, or only in part (no observable effect here, or no Python counterpart):
- predict_util_test.cc:523 ThreadPoolOptions, predict_impl_test.cc:435 ThreadPoolFactory,
  multi_inference_test.cc:403 ThreadPoolOptions: they count tasks scheduled on caller-supplied thread pools;
  the responses they check are those of PredictionSuccess / ValidSingleSignatureTest, ported below.
- predict_impl_test.cc:415 and get_model_metadata_impl_test.cc:213 ModelSpecOverride: PredictWithModelSpec /
  GetModelMetadataWithModelSpec are C++ entry points that take a ModelSpec apart from the request; ModelManager
  has none (the front ends put the URL's spec into the request). Lookup by spec (found vs NOT_FOUND) is ported
  in the MissingOrEmptyModelSpec cases.
- The method-name-check half of predict_util_test.cc:561, classifier_test.cc:987 and regressor_test.cc:563
  MethodNameCheck, and the `true` instantiation of the ClassifierTest/RegressorTest suites: they turn on
  --enable_signature_method_name_check (off by default), which tfzoo does not implement. The default (check off)
  half is ported: any method name is served.
- predict_util_test.cc:332 ModelMissingSignatures runs only inside Google (bad_half_plus_two); it is ported on
  the counter model, which has no serving_default signature.
- multi_inference_test.cc: the TF2 instantiation (saved_model_half_plus_two_tf2_cpu, not in the shared data);
  the TF1 one is ported (on the built half_plus_two and on TF Serving's saved_model_half_plus_two_cpu).
- saved_model_warmup_test.cc:79 MixedWarmupData with num_request_iterations=2, and
  saved_model_warmup_util_test.cc:120 WarmupStateRegistration: ModelWarmupOptions (request iterations, warm-up
  threads, the warm-up state registry) are not configurable in tfzoo; the default instantiation is ported.
- The RunOptions timeout the fake sessions CHECK (42 ms): an argument passed through, not a result.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc
import numpy as np
import pytest
import tfs_models
from conftest import TF_SERVING_TESTDATA
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)
from tfs_models import CLASSIFY, REGRESS, example

from tfzoo.serving.classify_regress import run_classify, run_regress
from tfzoo.serving.loader import load_servable
from tfzoo.serving.manager import ModelManager, ServingOptions, model_config
from tfzoo.serving.multi_inference import run_multi_inference
from tfzoo.serving.predict import run_predict
from tfzoo.serving.protocol.status import ServingError
from tfzoo.serving.servable import Servable
from tfzoo.serving.warmup import warm_up

TESTDATA = TF_SERVING_TESTDATA
MODEL = "test_model"  # kTestModelName
VERSION = 123  # kTestModelVersion
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED
DATA_LOSS = grpc.StatusCode.DATA_LOSS


# ------------------------------------------------------------------------------------------------------------- helpers

def raises(call: Callable[[], object], code: grpc.StatusCode, *substrings: str) -> ServingError:
    """Run `call`, expect a ServingError with `code` whose message contains every substring; return it."""
    with pytest.raises(ServingError) as info:
        call()
    assert info.value.code == code, info.value.message
    for substring in substrings:
        assert substring in info.value.message
    return info.value


def tensor(values: Sequence[object], dtype: int = types_pb2.DT_FLOAT,
           shape: Sequence[int] | None = None) -> tensor_pb2.TensorProto:
    """A TensorProto as the C++ tests write them: values in the dtype's typed field, shape only when given."""
    proto = tensor_pb2.TensorProto(dtype=dtype)
    field = {types_pb2.DT_FLOAT: "float_val", types_pb2.DT_STRING: "string_val", types_pb2.DT_BOOL: "bool_val",
             types_pb2.DT_INT64: "int64_val"}[dtype]
    getattr(proto, field).extend(values)
    if shape is not None:
        proto.tensor_shape.CopyFrom(_shape(shape))
    return proto


def _shape(dims: Sequence[int]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def scalar_float(value: float) -> tensor_pb2.TensorProto:
    """A float scalar as TF Serving answers it: float_val and an empty (present) tensor_shape."""
    return tensor([value], shape=())


def spec(name: str = MODEL, version: int | None = VERSION, signature_name: str = "") -> model_pb2.ModelSpec:
    model_spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    if version is not None:
        model_spec.version.value = version
    return model_spec


def predict_request(signature_name: str = "", inputs: dict[str, tensor_pb2.TensorProto] | None = None,
                    output_filter: Sequence[str] = (), **spec_args) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.CopyFrom(spec(signature_name=signature_name, **spec_args))
    for alias, proto in (inputs or {}).items():
        request.inputs[alias].CopyFrom(proto)
    return request


def predict_response(outputs: dict[str, tensor_pb2.TensorProto], signature_name: str,
                     version: int = VERSION) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse(model_spec=spec(version=version, signature_name=signature_name))
    for alias, proto in outputs.items():
        response.outputs[alias].CopyFrom(proto)
    return response


def classification_request(signature_name: str = "", examples: Sequence = (), context=None
                           ) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest(model_spec=spec(signature_name=signature_name))
    _fill_input(request.input, examples, context)
    return request


def regression_request(signature_name: str = "", examples: Sequence = (), context=None
                       ) -> regression_pb2.RegressionRequest:
    request = regression_pb2.RegressionRequest(model_spec=spec(signature_name=signature_name))
    _fill_input(request.input, examples, context)
    return request


def _fill_input(model_input, examples, context) -> None:
    if context is not None:
        model_input.example_list_with_context.context.CopyFrom(context)
        model_input.example_list_with_context.examples.extend(examples)
    elif examples:
        model_input.example_list.examples.extend(examples)


def classes_example(*class_scores: tuple[str, float]) -> object:
    """classifier_test.cc's example(): bytes feature "class" and float feature "score", one value per class."""
    return example(**{"class": [label for label, _ in class_scores], "score": [score for _, score in class_scores]})


def classification_result(rows: Sequence[Sequence[tuple[str | None, float | None]]]
                          ) -> classification_pb2.ClassificationResult:
    """A ClassificationResult: one Classifications per row, one Class per (label, score); None leaves it unset."""
    result = classification_pb2.ClassificationResult()
    for row in rows:
        classifications = result.classifications.add()
        for label, score in row:
            entry = classifications.classes.add()
            if label is not None:
                entry.label = label
            if score is not None:
                entry.score = score
    return result


def regression_result(values: Sequence[float]) -> regression_pb2.RegressionResult:
    result = regression_pb2.RegressionResult()
    for value in values:
        result.regressions.add().value = value
    return result


# ------------------------------------------------------------------------------------------------------------ fixtures

def _built(tmp_path_factory: pytest.TempPathFactory, builder: Callable[[Path], Path], name: str) -> Path:
    """A model base path holding one version, VERSION, written by `builder`."""
    base = tmp_path_factory.mktemp(name)
    builder(base / str(VERSION))
    return base


@pytest.fixture(scope="module", params=["built", "tf_serving_testdata"])
def half_plus_two_base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Base path of half_plus_two (version 123): tfs_models' build of TensorFlow's, or TF Serving's own
    saved_model_half_plus_two_cpu (no classify_x2_to_y3 signature) from tests/data."""
    if request.param == "built":
        return _built(tmp_path_factory, tfs_models.half_plus_two, "half_plus_two")
    return TESTDATA / "saved_model_half_plus_two_cpu"


@pytest.fixture(scope="module")
def built_half_plus_two_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built(tmp_path_factory, tfs_models.half_plus_two, "half_plus_two")


def _version_dir(base: Path) -> Path:
    return next(path for path in base.iterdir() if path.name.isdigit() and int(path.name) == VERSION)


@pytest.fixture(scope="module")
def half_plus_two(half_plus_two_base: Path) -> Iterator[Servable]:
    servable = load_servable(_version_dir(half_plus_two_base), MODEL, VERSION)
    yield servable
    servable.close()


@pytest.fixture(scope="module")
def built_half_plus_two(built_half_plus_two_base: Path) -> Iterator[Servable]:
    servable = load_servable(_version_dir(built_half_plus_two_base), MODEL, VERSION)
    yield servable
    servable.close()


def _manager(base: Path, **options) -> ModelManager:
    manager = ModelManager([model_config(MODEL, base)], ServingOptions(**options))
    manager.refresh()
    return manager


@pytest.fixture(scope="module")
def manager(half_plus_two_base: Path) -> Iterator[ModelManager]:
    """ServerCore serving half_plus_two as "test_model" (version 123)."""
    manager = _manager(half_plus_two_base)
    yield manager
    manager.unload_all()


@pytest.fixture(scope="module")
def built_manager(built_half_plus_two_base: Path) -> Iterator[ModelManager]:
    manager = _manager(built_half_plus_two_base)
    yield manager
    manager.unload_all()


@pytest.fixture(scope="module")
def counter_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built(tmp_path_factory, tfs_models.counter, "counter")


@pytest.fixture
def counter(counter_base: Path) -> Iterator[Servable]:
    """A freshly loaded counter model (its variable starts at 0 in each test)."""
    servable = load_servable(_version_dir(counter_base), MODEL, VERSION)
    yield servable
    servable.close()


def _loaded(tmp_path_factory: pytest.TempPathFactory, builder: Callable[[Path], Path], name: str
            ) -> Iterator[Servable]:
    servable = load_servable(_version_dir(_built(tmp_path_factory, builder, name)), MODEL, VERSION)
    yield servable
    servable.close()


@pytest.fixture(scope="module")
def predict_variants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servable]:
    yield from _loaded(tmp_path_factory, tfs_models.predict_variants, "predict_variants")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servable]:
    yield from _loaded(tmp_path_factory, tfs_models.fake_classifier, "classifier")


@pytest.fixture(scope="module")
def regressor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servable]:
    yield from _loaded(tmp_path_factory, tfs_models.fake_regressor, "regressor")


@pytest.fixture(scope="module")
def lookup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servable]:
    yield from _loaded(tmp_path_factory, tfs_models.lookup_table, "lookup_table")


# ================================================================================================ predict_util_test.cc
# RunPredict on one loaded SavedModel: run_predict.

# predict_util_test.cc:189 TEST_F(PredictImplTest, MissingOrEmptyModelSpec)
def test_predict_util_missing_or_empty_model_spec(half_plus_two: Servable) -> None:
    # RunPredict does not look the model up: every one of these requests fails on its (missing) inputs.
    request = predict_pb2.PredictRequest()
    raises(lambda: run_predict(half_plus_two, request), INVALID)
    request.model_spec.SetInParent()
    raises(lambda: run_predict(half_plus_two, request), INVALID)
    request.model_spec.name = "test"
    raises(lambda: run_predict(half_plus_two, request), INVALID)


# predict_util_test.cc:210 TEST_F(PredictImplTest, EmptyInputList)
def test_predict_util_empty_input_list(half_plus_two: Servable) -> None:
    raises(lambda: run_predict(half_plus_two, predict_request()), INVALID)


# predict_util_test.cc:223 TEST_F(PredictImplTest, InputTensorsDontMatchModelSpecInputs)
def test_predict_util_input_tensors_dont_match_model_spec_inputs(half_plus_two: Servable) -> None:
    request = predict_request(inputs={"unknown_key1": tensor([b"any_value"], types_pb2.DT_STRING, [1]),
                                      "unknown_key2": tensor([1.0], shape=[1])})
    raises(lambda: run_predict(half_plus_two, request), INVALID,
           "Sent extra: {unknown_key1,unknown_key2}", "Missing but required: {x}")


# predict_util_test.cc:254 TEST_F(PredictImplTest, PredictionInvalidTensor)
def test_predict_util_prediction_invalid_tensor(half_plus_two: Servable) -> None:
    request = predict_request(inputs={"x": tensor([True], types_pb2.DT_BOOL)})
    raises(lambda: run_predict(half_plus_two, request), INVALID, "Expects arg[0] to be float but bool is provided")


# predict_util_test.cc:274 TEST_F(PredictImplTest, OutputFiltersDontMatchModelSpecOutputs)
def test_predict_util_output_filters_dont_match_model_spec_outputs(half_plus_two: Servable) -> None:
    inputs = {"x": tensor([2.0])}
    raises(lambda: run_predict(half_plus_two, predict_request(inputs=inputs, output_filter=["output_filter"])), INVALID,
           "output tensor alias not found in signature: output_filter")
    run_predict(half_plus_two, predict_request(inputs=inputs, output_filter=["y"]))
    raises(lambda: run_predict(half_plus_two, predict_request(inputs=inputs, output_filter=["y", "y"])), INVALID,
           "duplicate output tensor alias: y")


# predict_util_test.cc:309 TEST_F(PredictImplTest, InputTensorsHaveWrongType)
def test_predict_util_input_tensors_have_wrong_type(half_plus_two: Servable) -> None:
    request = predict_request(inputs={"x": tensor([b"any_value"], types_pb2.DT_STRING, [1])}, output_filter=["y"])
    raises(lambda: run_predict(half_plus_two, request), INVALID, "to be float but string is provided")


# predict_util_test.cc:332 TEST_F(PredictImplTest, ModelMissingSignatures)
def test_predict_util_model_missing_signatures(counter: Servable) -> None:
    # The counter model has no serving_default signature, which an unnamed Predict asks for.
    raises(lambda: run_predict(counter, predict_request()), FAILED_PRECONDITION,
           'Serving signature key "serving_default" not found.')


# predict_util_test.cc:349 TEST_F(PredictImplTest, PredictionSuccess)
def test_predict_util_prediction_success(half_plus_two: Servable) -> None:
    # A scalar fed into x (static shape [?, 1]): nothing checks shapes, y is the scalar 0.5 * 2 + 2.
    response = run_predict(half_plus_two, predict_request(inputs={"x": tensor([2.0])}))
    assert response == predict_response({"y": scalar_float(3)}, "serving_default")


# predict_util_test.cc:377 TEST_F(PredictImplTest, PredictionWithNamedRegressionSignature)
def test_predict_util_prediction_with_named_regression_signature(half_plus_two: Servable) -> None:
    response = run_predict(half_plus_two, predict_request("regress_x2_to_y3", inputs={"inputs": tensor([2.0])}))
    assert response == predict_response({"outputs": scalar_float(4)}, "regress_x2_to_y3")


# predict_util_test.cc:403 TEST_F(PredictImplTest, PredictionWithNamedClassificationSignature)
def test_predict_util_prediction_with_named_classification_signature(built_half_plus_two: Servable) -> None:
    response = run_predict(built_half_plus_two, predict_request("classify_x2_to_y3", inputs={"inputs": tensor([2.0])}))
    assert response == predict_response({"scores": scalar_float(4)}, "classify_x2_to_y3")


def _run_counter_sequence(predict: Callable[[predict_pb2.PredictRequest], predict_pb2.PredictResponse]) -> None:
    # get, incr, reset, incr (with an output filter), incr_by 3: the variable lives in the session.
    for signature, kwargs, expected in [("get_counter", {}, 0), ("incr_counter", {}, 1), ("reset_counter", {}, 0),
                                        ("incr_counter", {"output_filter": ["output"]}, 1),
                                        ("incr_counter_by", {"inputs": {"delta": tensor([3.0])}}, 4)]:
        response = predict(predict_request(signature, **kwargs))
        assert response == predict_response({"output": scalar_float(expected)}, signature), signature


# predict_util_test.cc:436 TEST_F(PredictImplTest, PredictionWithCustomizedSignatures)
def test_predict_util_prediction_with_customized_signatures(counter: Servable) -> None:
    _run_counter_sequence(functools.partial(run_predict, counter))


# predict_util_test.cc:561 TEST_F(PredictImplTest, MethodNameCheck) (the default, check-off half)
@pytest.mark.parametrize("signature", ["serving_default", "unsupported_method", "no_method"])
def test_predict_util_method_name_check(predict_variants: Servable, signature: str) -> None:
    response = run_predict(predict_variants, predict_request(signature, inputs={"x": tensor([2.0])}))
    assert response.outputs["y"] == scalar_float(3)


# ================================================================================================ predict_impl_test.cc
# TensorflowPredictor::Predict through ServerCore: ModelManager.predict.

# predict_impl_test.cc:109 TEST_F(PredictImplTest, MissingOrEmptyModelSpec)
def test_predict_impl_missing_or_empty_model_spec(manager: ModelManager) -> None:
    request = predict_pb2.PredictRequest()
    raises(lambda: manager.predict(request), INVALID, "Missing ModelSpec")
    request.model_spec.SetInParent()
    raises(lambda: manager.predict(request), INVALID, "ModelSpec has no name specified.")
    request.model_spec.name = "test"
    raises(lambda: manager.predict(request), NOT_FOUND)


# predict_impl_test.cc:137 TEST_F(PredictImplTest, EmptyInputList)
def test_predict_impl_empty_input_list(manager: ModelManager) -> None:
    raises(lambda: manager.predict(predict_request()), INVALID)


# predict_impl_test.cc:153 TEST_F(PredictImplTest, InputTensorsDontMatchModelSpecInputs)
def test_predict_impl_input_tensors_dont_match_model_spec_inputs(manager: ModelManager) -> None:
    request = predict_request(inputs={"key": tensor([b"any_key"], types_pb2.DT_STRING, [1])})
    raises(lambda: manager.predict(request), INVALID)


# predict_impl_test.cc:175 TEST_F(PredictImplTest, OutputFiltersDontMatchModelSpecOutputs)
def test_predict_impl_output_filters_dont_match_model_spec_outputs(manager: ModelManager) -> None:
    inputs = {"x": tensor([2.0])}
    raises(lambda: manager.predict(predict_request(inputs=inputs, output_filter=["output_filter"])), INVALID)
    manager.predict(predict_request(inputs=inputs, output_filter=["y"]))
    raises(lambda: manager.predict(predict_request(inputs=inputs, output_filter=["y", "y"])), INVALID)


# predict_impl_test.cc:209 TEST_F(PredictImplTest, InputTensorsHaveWrongType)
def test_predict_impl_input_tensors_have_wrong_type(manager: ModelManager) -> None:
    request = predict_request(inputs={"x": tensor([b"any_key"], types_pb2.DT_STRING, [1])}, output_filter=["y"])
    raises(lambda: manager.predict(request), INVALID)


# predict_impl_test.cc:232 TEST_F(PredictImplTest, PredictionSuccess)
def test_predict_impl_prediction_success(manager: ModelManager) -> None:
    response = manager.predict(predict_request(inputs={"x": tensor([2.0])}))
    assert response == predict_response({"y": scalar_float(3)}, "serving_default")


# predict_impl_test.cc:262 TEST_F(PredictImplTest, PredictionWithNamedRegressionSignature)
def test_predict_impl_prediction_with_named_regression_signature(manager: ModelManager) -> None:
    response = manager.predict(predict_request("regress_x2_to_y3", inputs={"inputs": tensor([2.0])}))
    assert response == predict_response({"outputs": scalar_float(4)}, "regress_x2_to_y3")


# predict_impl_test.cc:290 TEST_F(PredictImplTest, PredictionWithNamedClassificationSignature)
def test_predict_impl_prediction_with_named_classification_signature(built_manager: ModelManager) -> None:
    response = built_manager.predict(predict_request("classify_x2_to_y3", inputs={"inputs": tensor([2.0])}))
    assert response == predict_response({"scores": scalar_float(4)}, "classify_x2_to_y3")


# predict_impl_test.cc:325 TEST_F(PredictImplTest, PredictionWithCustomizedSignatures)
def test_predict_impl_prediction_with_customized_signatures(tmp_path: Path) -> None:
    tfs_models.counter(tmp_path / "counter" / str(VERSION))
    manager = _manager(tmp_path / "counter")
    try:
        _run_counter_sequence(manager.predict)
    finally:
        manager.unload_all()


# ---------------------------------------------------------------------------------------- same sources, no single TEST
# Behaviour of predict_util.cc, server_core.cc and TensorFlow's GetInputValues that no ported TEST covers; where
# tfrt_predict_util_test.cc states the same behaviour for the TFRT path, its expectations are used.

# server_core.cc:841 ServableRequestFromModelSpec: a version that is not loaded, a label that is not configured
def test_predict_impl_unknown_version_or_label(manager: ModelManager) -> None:
    raises(lambda: manager.predict(predict_request(inputs={"x": tensor([2.0])}, version=7)), NOT_FOUND)
    request = predict_request(inputs={"x": tensor([2.0])}, version=None)
    request.model_spec.version_label = "canary"
    raises(lambda: manager.predict(request), INVALID, "Unrecognized servable version label: canary")
    # No version: the latest one, reported in the response.
    response = manager.predict(predict_request(inputs={"x": tensor([2.0])}, version=None))
    assert response.model_spec == spec(signature_name="serving_default")


# predict_util.cc:93 RunPredict: an unknown signature key
def test_predict_util_unknown_signature_key(half_plus_two: Servable) -> None:
    raises(lambda: run_predict(half_plus_two, predict_request("nope", inputs={"x": tensor([2.0])})), FAILED_PRECONDITION,
           'Serving signature key "nope" not found.')


# predict_util.cc:177 PostProcessPredictionResult: typed fields (AsProtoField) by default, tensor_content
# (AsProtoTensorContent) with --enable_serialization_as_tensor_content
def test_predict_util_response_tensor_serialization(half_plus_two: Servable, half_plus_two_base: Path) -> None:
    request = predict_request(inputs={"x": tensor([1.0, 2.0], shape=[2, 1])})
    expected = np.array([[2.5], [3.0]], dtype=np.float32)
    typed = run_predict(half_plus_two, request).outputs["y"]
    assert typed == tensor([2.5, 3.0], shape=[2, 1])
    content = run_predict(half_plus_two, request, tensor_content=True).outputs["y"]
    assert not content.float_val and content.tensor_shape == _shape([2, 1])
    assert content.tensor_content == expected.tobytes()
    manager = _manager(half_plus_two_base, tensor_content=True)
    try:
        assert manager.predict(request).outputs["y"] == content
    finally:
        manager.unload_all()


# tfrt_predict_util_test.cc:155 PredictionSuccessWithDefaultInputs (predict_util.cc:51 VerifyRequestInputsSize and
# GetInputValues take a missing input from the signature's defaults on the TF1 path too)
def test_predict_util_default_inputs(predict_variants: Servable) -> None:
    response = run_predict(predict_variants, predict_request())
    assert response.outputs["y"] == tensor([2.0], shape=[1])
    # An input the signature does not have is still refused.
    request = predict_request(inputs={"x": tensor([2.0]), "z": tensor([1.0])})
    raises(lambda: run_predict(predict_variants, request), INVALID, "Sent extra: {z}")


# tfrt_predict_util_test.cc:313 OutputFilters, :378 OutputFiltersFullSet, :442 OutputFiltersWithDefaultInputs,
# :507 UnmatchedOutputFilters
def test_predict_util_output_filters(predict_variants: Servable) -> None:
    two = "two_outputs"
    response = run_predict(predict_variants, predict_request(two, inputs={"x": tensor([2.0])}, output_filter=["output1"]))
    assert dict(response.outputs) == {"output1": scalar_float(3)}
    response = run_predict(predict_variants, predict_request(two, inputs={"x": tensor([2.0])},
                                                        output_filter=["output1", "output2"]))
    assert dict(response.outputs) == {"output1": scalar_float(3), "output2": scalar_float(4)}
    response = run_predict(predict_variants, predict_request(two, output_filter=["output1"]))
    assert dict(response.outputs) == {"output1": tensor([2.0], shape=[1])}
    raises(lambda: run_predict(predict_variants, predict_request(two, inputs={"x": tensor([2.0])},
                                                            output_filter=["output1", "output3"])), INVALID,
           "output tensor alias not found in signature: output3 Outputs expected to be in the set "
           "{output1,output2}.")


# predict_util.cc:154 PreProcessPrediction: no filter fetches every output; a signature without outputs fetches
# nothing, which Session::Run refuses
def test_predict_util_signature_without_outputs(predict_variants: Servable) -> None:
    raises(lambda: run_predict(predict_variants, predict_request("no_outputs", inputs={"x": tensor([2.0])})), INVALID,
           "Must specify at least one target to fetch or execute.")


# -------------------------------------------------------------------------------------------- SavedModelBundle loading
# saved_model_bundle_factory.cc loads with TensorFlow's LoadSavedModel: the main op and table initialisers run
# with the SavedModel's own asset paths (the source vocabulary is gone after the export).

def test_bundle_runs_table_initialisers_from_assets(lookup: Servable) -> None:
    response = run_predict(lookup, predict_request(inputs={"ids": tensor([0, 2, 7], types_pb2.DT_INT64, [3])}))
    assert response.outputs["labels"] == tensor([b"cat", b"bird", b"UNK"], types_pb2.DT_STRING, [3])
    response = run_predict(lookup, predict_request("index", inputs={"words": tensor([b"dog", b"cow"], types_pb2.DT_STRING,
                                                                               [2])}))
    assert response.outputs["ids"] == tensor([1, -1], types_pb2.DT_INT64, [2])
    response = run_classify(lookup, classification_request("classify", [example(logits=[0.5, 0.25, 0.125])]))
    assert response.result == classification_result([[("cat", 0.5), ("dog", 0.25), ("bird", 0.125)]])


# ===================================================================================== get_model_metadata_impl_test.cc

# get_model_metadata_impl_test.cc:123 TEST_P(GetModelMetadataImplTest, EmptyOrInvalidMetadataFieldList)
def test_metadata_empty_or_invalid_metadata_field_list(manager: ModelManager) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    raises(lambda: manager.metadata(request), INVALID)
    request.metadata_field.append("some_stuff")
    raises(lambda: manager.metadata(request), INVALID)
    # With a model spec, the fields themselves are refused, before the model is looked up.
    for name in (MODEL, "nonexistent_model"):
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec(name))
        raises(lambda: manager.metadata(request), INVALID,
               "GetModelMetadataRequest must specify at least one metadata_field")
        request.metadata_field.extend(["signature_def", "some_stuff"])
        raises(lambda: manager.metadata(request), INVALID, "Metadata field some_stuff is not supported")


# get_model_metadata_impl_test.cc:141 TEST_P(GetModelMetadataImplTest, MissingOrEmptyModelSpec)
def test_metadata_missing_or_empty_model_spec(manager: ModelManager) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    raises(lambda: manager.metadata(request), INVALID, "Missing ModelSpec")
    request.model_spec.SetInParent()
    raises(lambda: manager.metadata(request), INVALID)
    request.model_spec.name = "test"
    raises(lambda: manager.metadata(request), NOT_FOUND)


# get_model_metadata_impl_test.cc:168 TEST_P(GetModelMetadataImplTest, ReturnsSignaturesForValidModel)
def test_metadata_returns_signatures_for_valid_model(manager: ModelManager, half_plus_two: Servable,
                                                     half_plus_two_base: Path) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec(), metadata_field=["signature_def"])
    response = manager.metadata(request)
    assert response.model_spec == request.model_spec
    assert list(response.metadata) == ["signature_def"]
    received = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(received)
    assert dict(received.signature_def) == dict(half_plus_two.signature_defs)
    assert {"regress_x_to_y", "serving_default"} <= set(received.signature_def)
    if half_plus_two_base.is_relative_to(TESTDATA):  # and what TF Serving answers for its own export
        answer = json.loads((TESTDATA / "half_plus_two_model_metadata.json").read_text(encoding="utf-8"))
        expected = json_format.ParseDict(answer["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap())
        assert received == expected


# ================================================================================================== classifier_test.cc
# RunClassify / the SavedModel classifier on fake_classifier(): run_classify.

TWO_EXAMPLES = (classes_example(("dos", 2), ("uno", 1)), classes_example(("cuatro", 4), ("tres", 3)))


# classifier_test.cc:345 TEST_P(ClassifierTest, ExampleList)
def test_classifier_example_list(classifier: Servable) -> None:
    response = run_classify(classifier, classification_request(examples=TWO_EXAMPLES))
    assert response.result == classification_result([[("dos", 2), ("uno", 1)], [("cuatro", 4), ("tres", 3)]])
    assert response.model_spec == spec(signature_name="serving_default")


# classifier_test.cc:398 TEST_P(ClassifierTest, ExampleListWithContext)
def test_classifier_example_list_with_context(classifier: Servable) -> None:
    request = classification_request(examples=[example(), example()], context=classes_example(("dos", 2), ("uno", 1)))
    response = run_classify(classifier, request)
    assert response.result == classification_result([[("dos", 2), ("uno", 1)]] * 2)


# classifier_test.cc:454 TEST_P(ClassifierTest, ExampleListWithContext_DuplicateFeatures)
def test_classifier_example_list_with_context_duplicate_features(classifier: Servable) -> None:
    # An example's feature replaces the context's feature of the same name.
    request = classification_request(examples=[example(), classes_example(("tres", 3), ("cuatro", 4))],
                                     context=classes_example(("uno", 1), ("dos", 2)))
    response = run_classify(classifier, request)
    assert response.result == classification_result([[("uno", 1), ("dos", 2)], [("tres", 3), ("cuatro", 4)]])


# classifier_test.cc:512 TEST_P(ClassifierTest, ClassesOnly)
def test_classifier_classes_only(classifier: Servable) -> None:
    response = run_classify(classifier, classification_request("classes_only", TWO_EXAMPLES))
    assert response.result == classification_result([[("dos", None), ("uno", None)],
                                                     [("cuatro", None), ("tres", None)]])


# classifier_test.cc:560 TEST_P(ClassifierTest, ScoresOnly)
def test_classifier_scores_only(classifier: Servable) -> None:
    response = run_classify(classifier, classification_request("scores_only", TWO_EXAMPLES))
    assert response.result == classification_result([[(None, 2), (None, 1)], [(None, 4), (None, 3)]])


# classifier_test.cc:609 TEST_P(ClassifierTest, ZeroScoresArePresent)
def test_classifier_zero_scores_are_present(classifier: Servable) -> None:
    request = classification_request("scores_only", [classes_example(("minus", -1), ("zero", 0), ("one", 1))])
    (classifications,) = run_classify(classifier, request).result.classifications
    assert [entry.score for entry in classifications.classes] == pytest.approx([-1, 0, 1], abs=1e-7)


# classifier_test.cc:643 TEST_P(ClassifierTest, ValidNamedSignature)
def test_classifier_valid_named_signature(classifier: Servable) -> None:
    response = run_classify(classifier, classification_request("output_plus_one", TWO_EXAMPLES))
    assert response.result == classification_result([[("dos", 3), ("uno", 2)], [("cuatro", 5), ("tres", 4)]])


# classifier_test.cc:698 TEST_P(ClassifierTest, InvalidNamedSignature)
# classifier_test.cc:721 TEST_P(ClassifierTest, MalformedScores)
# classifier_test.cc:745 TEST_P(ClassifierTest, MissingClassificationSignature)
@pytest.mark.parametrize("signature", ["invalid_regression_signature", "ImproperlySizedScoresSignature",
                                       "empty_signature"])
def test_classifier_invalid_signatures(classifier: Servable, signature: str) -> None:
    raises(lambda: run_classify(classifier, classification_request(signature, TWO_EXAMPLES)), INVALID)


# classifier_test.cc:769 TEST_P(ClassifierTest, EmptyInput)
# classifier_test.cc:786 TEST_P(ClassifierTest, EmptyExampleList)
# classifier_test.cc:803 TEST_P(ClassifierTest, EmptyExampleListWithContext)
@pytest.mark.parametrize("kind", ["input", "example_list", "example_list_with_context"])
def test_classifier_empty_input(classifier: Servable, kind: str) -> None:
    request = classification_request()
    if kind == "input":
        request.input.SetInParent()
    elif kind == "example_list":
        request.input.example_list.SetInParent()
    else:
        request.input.example_list_with_context.context.CopyFrom(classes_example(("dos", 2)))
    raises(lambda: run_classify(classifier, request), INVALID, "Input is empty")


# classifier_test.cc:822 TEST_P(ClassifierTest, RunsFails)
def test_classifier_runs_fails(classifier: Servable) -> None:
    raises(lambda: run_classify(classifier, classification_request("run_fails", TWO_EXAMPLES[:1])), INVALID,
           "Run totally failed")


# classifier_test.cc:843 TEST_P(ClassifierTest, ClassesIncorrectTensorBatchSize)
# classifier_test.cc:870 TEST_P(ClassifierTest, ClassesIncorrectTensorType)
# classifier_test.cc:899 TEST_P(ClassifierTest, ScoresIncorrectTensorBatchSize)
# classifier_test.cc:926 TEST_P(ClassifierTest, ScoresIncorrectTensorType)
# classifier_test.cc:955 TEST_P(ClassifierTest, MismatchedNumberOfTensorClasses)
@pytest.mark.parametrize("signature, message", [
    ("classes_batch_one", "batch size"),
    ("classes_float", "Expected classes Tensor of DT_STRING"),
    ("scores_batch_one", "batch size"),
    ("scores_string", "Expected scores Tensor of DT_FLOAT"),
    ("scores_three_classes", "Tensors class and score should match in dim_size(1). Got 2 vs. 3"),
])
def test_classifier_bad_output_tensors(classifier: Servable, signature: str, message: str) -> None:
    raises(lambda: run_classify(classifier, classification_request(signature, TWO_EXAMPLES)), INVALID, message)


# classifier_test.cc:987 TEST_P(ClassifierTest, MethodNameCheck) (the default, check-off half)
@pytest.mark.parametrize("signature", ["serving_default", "unsupported_method", "no_method"])
def test_classifier_method_name_check(classifier: Servable, signature: str) -> None:
    response = run_classify(classifier, classification_request(signature, TWO_EXAMPLES[:1]))
    assert response.result == classification_result([[("dos", 2), ("uno", 1)]])


# =================================================================================================== regressor_test.cc
# RunRegress / the SavedModel regressor on fake_regressor(): run_regress.

# regressor_test.cc:297 TEST_P(RegressorTest, BasicExampleList)
def test_regressor_basic_example_list(regressor: Servable) -> None:
    response = run_regress(regressor, regression_request(examples=[example(output=2.0), example(output=3.0)]))
    assert response.result == regression_result([2.0, 3.0])
    assert response.model_spec == spec(signature_name="serving_default")


# regressor_test.cc:321 TEST_P(RegressorTest, BasicExampleListWithContext)
def test_regressor_basic_example_list_with_context(regressor: Servable) -> None:
    response = run_regress(regressor, regression_request(examples=[example(), example()], context=example(output=3.0)))
    assert response.result == regression_result([3.0, 3.0])


# regressor_test.cc:348 TEST_P(RegressorTest, ValidNamedSignature)
def test_regressor_valid_named_signature(regressor: Servable) -> None:
    response = run_regress(regressor, regression_request("output_plus_one", [example(output=2.0), example(output=3.0)]))
    assert response.result == regression_result([3.0, 4.0])


# regressor_test.cc:374 TEST_P(RegressorTest, InvalidNamedSignature)
# regressor_test.cc:396 TEST_P(RegressorTest, MalformedOutputs)
# regressor_test.cc:537 TEST_P(RegressorTest, MissingRegressionSignature)
@pytest.mark.parametrize("signature, examples", [
    ("invalid_classification_signature", [example(output=2.0), example(output=3.0)]),
    ("ImproperlySizedOutputSignature", [example(output=2.0), example(output=3.0)]),
    ("empty_signature", [example(**{"class": "uno"})]),
])
def test_regressor_invalid_signatures(regressor: Servable, signature: str, examples: list) -> None:
    raises(lambda: run_regress(regressor, regression_request(signature, examples)), INVALID)


# regressor_test.cc:420 TEST_P(RegressorTest, EmptyInput)
# regressor_test.cc:436 TEST_P(RegressorTest, EmptyExampleList)
# regressor_test.cc:451 TEST_P(RegressorTest, EmptyExampleListWithContext)
@pytest.mark.parametrize("kind", ["input", "example_list", "example_list_with_context"])
def test_regressor_empty_input(regressor: Servable, kind: str) -> None:
    request = regression_request()
    if kind == "input":
        request.input.SetInParent()
    elif kind == "example_list":
        request.input.example_list.SetInParent()
    else:
        request.input.example_list_with_context.context.CopyFrom(example(output=3.0))
    raises(lambda: run_regress(regressor, request), INVALID, "Input is empty")


# regressor_test.cc:469 TEST_P(RegressorTest, RunsFails)
def test_regressor_runs_fails(regressor: Servable) -> None:
    raises(lambda: run_regress(regressor, regression_request("run_fails", [example(output=2.0)])), INVALID,
           "Run totally failed")


# regressor_test.cc:488 TEST_P(RegressorTest, UnexpectedOutputTensorSize)
# regressor_test.cc:511 TEST_P(RegressorTest, UnexpectedOutputTensorType)
@pytest.mark.parametrize("signature, message", [("batch_of_two", "output batch size"),
                                                ("string_output", "Expected output Tensor of DT_FLOAT")])
def test_regressor_bad_output_tensor(regressor: Servable, signature: str, message: str) -> None:
    raises(lambda: run_regress(regressor, regression_request(signature, [example(output=2.0)])), INVALID, message)


# regressor_test.cc:563 TEST_P(RegressorTest, MethodNameCheck) (the default, check-off half)
@pytest.mark.parametrize("signature", ["serving_default", "unsupported_method", "no_method"])
def test_regressor_method_name_check(regressor: Servable, signature: str) -> None:
    response = run_regress(regressor, regression_request(signature, [example(output=2.0)]))
    assert response.result == regression_result([2.0])


# ============================================================================================= multi_inference_test.cc
# TensorFlowMultiInferenceRunner / RunMultiInference on half_plus_two: run_multi_inference.

def multi_inference_request(*tasks: tuple[str, str], x: float | None = 2.0, model: str = MODEL
                            ) -> inference_pb2.MultiInferenceRequest:
    request = inference_pb2.MultiInferenceRequest()
    if x is not None:
        request.input.example_list.examples.append(example(x=x))
    for signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.CopyFrom(model_pb2.ModelSpec(name=model, signature_name=signature))
    return request


def inference_result(signature: str, **result) -> inference_pb2.InferenceResult:
    return inference_pb2.InferenceResult(model_spec=spec(signature_name=signature), **result)


# multi_inference_test.cc:156 TYPED_TEST_P(MultiInferenceTest, MissingInputTest)
def test_multi_inference_missing_input(half_plus_two: Servable) -> None:
    request = multi_inference_request(("regress_x_to_y", REGRESS), x=None)
    raises(lambda: run_multi_inference(half_plus_two, request), INVALID, "Input is empty")


# multi_inference_test.cc:180 TYPED_TEST_P(MultiInferenceTest, UndefinedSignatureTest)
def test_multi_inference_undefined_signature(half_plus_two: Servable) -> None:
    request = multi_inference_request(("ThisSignatureDoesNotExist", REGRESS))
    raises(lambda: run_multi_inference(half_plus_two, request), INVALID, "signature not found")


# multi_inference_test.cc:207 TYPED_TEST_P(MultiInferenceTest, InconsistentModelSpecsInRequestTest)
def test_multi_inference_inconsistent_model_specs(half_plus_two: Servable) -> None:
    request = multi_inference_request(("regress_x_to_y", REGRESS))
    request.tasks.add(method_name=REGRESS).model_spec.CopyFrom(
        model_pb2.ModelSpec(name="ModelDoesNotExist", signature_name="regress_x_to_y"))
    raises(lambda: run_multi_inference(half_plus_two, request), INVALID, "must access the same model name")


# multi_inference_test.cc:241 TYPED_TEST_P(MultiInferenceTest, EvaluateDuplicateSignaturesTest)
def test_multi_inference_evaluate_duplicate_signatures(half_plus_two: Servable) -> None:
    request = multi_inference_request(("regress_x_to_y", REGRESS), ("regress_x_to_y", REGRESS))
    raises(lambda: run_multi_inference(half_plus_two, request), INVALID,
           "Duplicate evaluation of signature: regress_x_to_y")


# multi_inference_test.cc:268 TYPED_TEST_P(MultiInferenceTest, UsupportedSignatureTypeTest)
def test_multi_inference_unsupported_signature_type(half_plus_two: Servable) -> None:
    request = multi_inference_request(("serving_default", "tensorflow/serving/predict"))
    raises(lambda: run_multi_inference(half_plus_two, request), UNIMPLEMENTED, "Unsupported signature")


# multi_inference_test.cc:293 TYPED_TEST_P(MultiInferenceTest, ValidSingleSignatureTest)
def test_multi_inference_valid_single_signature(half_plus_two: Servable) -> None:
    response = run_multi_inference(half_plus_two, multi_inference_request(("regress_x_to_y", REGRESS)))
    expected = inference_pb2.MultiInferenceResponse(results=[
        inference_result("regress_x_to_y", regression_result=regression_result([3.0]))])
    assert response == expected


# multi_inference_test.cc:323 TYPED_TEST_P(MultiInferenceTest, MultipleValidRegressSignaturesTest)
def test_multi_inference_multiple_valid_regress_signatures(half_plus_two: Servable) -> None:
    request = multi_inference_request(("regress_x_to_y", REGRESS), ("regress_x_to_y2", REGRESS))
    expected = inference_pb2.MultiInferenceResponse(results=[
        inference_result("regress_x_to_y", regression_result=regression_result([3.0])),
        inference_result("regress_x_to_y2", regression_result=regression_result([4.0]))])
    assert run_multi_inference(half_plus_two, request) == expected


# multi_inference_test.cc:364 TYPED_TEST_P(MultiInferenceTest, RegressAndClassifySignaturesTest)
def test_multi_inference_regress_and_classify_signatures(half_plus_two: Servable) -> None:
    request = multi_inference_request(("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY))
    expected = inference_pb2.MultiInferenceResponse(results=[
        inference_result("regress_x_to_y", regression_result=regression_result([3.0])),
        inference_result("classify_x_to_y", classification_result=classification_result([[(None, 3.0)]]))])
    assert run_multi_inference(half_plus_two, request) == expected


# =================================================================================== saved_model_warmup(_util)_test.cc
# RunSavedModelWarmup at load: load_servable replays assets.extra/tf_serving_warmup_requests; a failing record
# fails the load.

@pytest.fixture
def warmup_dir(tmp_path: Path) -> Path:
    """warmup_model() exported to a fresh version folder, with no warm-up file yet."""
    return tfs_models.warmup_model(tmp_path / str(VERSION))


def _mixed_records() -> list[bytes]:
    return [tfs_models.warmup_log(kind).SerializeToString() for kind in tfs_models.MIXED_WARMUP]


def _runs(servable: Servable) -> int:
    return int(run_predict(servable, predict_request("get_runs")).outputs["runs"].int64_val[0])


# saved_model_warmup_test.cc:79 TEST_P(SavedModelBundleWarmupOptionsTest, MixedWarmupData)
def test_warmup_mixed_warmup_data(warmup_dir: Path) -> None:
    # 10 x (regress, classify, predict, multi-inference): each record is one session run.
    tfs_models.write_warmup_records(warmup_dir, _mixed_records(), repeat=10)
    servable = load_servable(warmup_dir, MODEL, VERSION, warm_up=False)
    try:
        assert _runs(servable) == 0
        assert warm_up(servable) == 40
        assert _runs(servable) == 40
    finally:
        servable.close()
    servable = load_servable(warmup_dir, MODEL, VERSION)  # at load
    try:
        assert _runs(servable) == 40
    finally:
        servable.close()


# saved_model_warmup_test.cc:119 TEST(SavedModelBundleWarmupTest, UnsupportedLogType_SessionRun)
# saved_model_warmup_test.cc:144 TEST(SavedModelBundleWarmupTest, UnsupportedLogType_PredictStreamed)
@pytest.mark.parametrize("kind, case", [("session_run_log", 5), ("predict_streamed_log", 7)])
def test_warmup_unsupported_log_type(warmup_dir: Path, kind: str, case: int) -> None:
    tfs_models.write_warmup_records(warmup_dir, [tfs_models.warmup_log(kind).SerializeToString()], repeat=10)
    error = raises(lambda: load_servable(warmup_dir, MODEL, VERSION), UNIMPLEMENTED, "Unsupported log_type for warmup")
    assert error.message == f"Unsupported log_type for warmup: {case}"  # saved_model_warmup.cc:70 (LogTypeCase)


# saved_model_warmup_util_test.cc:149 TEST_F(RunSavedModelWarmupUntrackedTest, NoWarmupDataFile)
# saved_model_warmup_util_test.cc:165 TEST_F(RunSavedModelWarmupUntrackedTest, WarmupDataFileEmpty)
@pytest.mark.parametrize("empty_file", [False, True])
def test_warmup_no_or_empty_data_file(warmup_dir: Path, empty_file: bool) -> None:
    (warmup_dir / "assets.extra").mkdir()
    if empty_file:
        tfs_models.write_warmup_records(warmup_dir, [])
    servable = load_servable(warmup_dir, MODEL, VERSION, warm_up=False)
    try:
        assert warm_up(servable) == 0
        assert _runs(servable) == 0
    finally:
        servable.close()


# saved_model_warmup_util_test.cc:186 TEST_F(RunSavedModelWarmupUntrackedTest, UnsupportedFileFormat)
def test_warmup_unsupported_file_format(warmup_dir: Path) -> None:
    # Serialized PredictionLogs one after another, without TFRecord framing.
    tfs_models.write_raw_warmup_file(warmup_dir, tfs_models.warmup_log("session_run_log").SerializeToString() * 10)
    error = raises(lambda: load_servable(warmup_dir, MODEL, VERSION), DATA_LOSS,
                   "Please verify your warmup data is in TFRecord format")
    assert error.message.startswith("corrupted record at 0")  # RecordReader's status, as saved_model_warmup_util.cc:235


# saved_model_warmup_util_test.cc:215 TEST_F(RunSavedModelWarmupUntrackedTest, TooManyWarmupRecords)
def test_warmup_too_many_warmup_records(warmup_dir: Path) -> None:
    tfs_models.write_warmup_records(warmup_dir, _mixed_records(), repeat=251)  # 1004 > kMaxNumRecords (1000)
    raises(lambda: load_servable(warmup_dir, MODEL, VERSION), INVALID, "Number of warmup records exceeds the maximum")


# saved_model_warmup_util_test.cc:241 TEST_F(RunSavedModelWarmupUntrackedTest, UnparsableRecord)
def test_warmup_unparsable_record(warmup_dir: Path) -> None:
    tfs_models.write_warmup_records(warmup_dir, [b"malformed_record"], repeat=10)
    raises(lambda: load_servable(warmup_dir, MODEL, VERSION), INVALID,
           "Failed to parse warmup record: malformed_record from ")  # the raw record (saved_model_warmup_util.cc:120)


# saved_model_warmup_util_test.cc:262 TEST_F(RunSavedModelWarmupUntrackedTest, RunSuccess)
def test_warmup_run_success(warmup_dir: Path) -> None:
    tfs_models.write_warmup_records(warmup_dir, _mixed_records(), repeat=5)
    servable = load_servable(warmup_dir, MODEL, VERSION)
    try:
        assert _runs(servable) == 20
    finally:
        servable.close()


# saved_model_warmup_util_test.cc:281 TEST_F(RunSavedModelWarmupUntrackedTest, RunFailure)
def test_warmup_run_failure(warmup_dir: Path) -> None:
    # A record whose request fails (a regress signature the model lacks) fails the warm-up with its status.
    failing = tfs_models.warmup_log("regress_log")
    failing.regress_log.request.model_spec.signature_name = "missing"
    tfs_models.write_warmup_records(warmup_dir, [*_mixed_records(), failing.SerializeToString()], repeat=10)
    raises(lambda: load_servable(warmup_dir, MODEL, VERSION), INVALID, "No signature was found with the name: missing")
    # Through ServerCore the version then fails to load and is not served.
    manager = _manager(warmup_dir.parent)
    try:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=MODEL))
        (status,) = manager.status(request).model_version_status
        assert status.status.error_code == INVALID.value[0]
        assert "No signature was found with the name: missing" in status.status.error_message
        raises(lambda: manager.predict(predict_request("get_runs")), NOT_FOUND)
    finally:
        manager.unload_all()

