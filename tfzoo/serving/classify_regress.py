"""Classify and Regress on tf.Examples as TF Serving's classifier.cc and regressor.cc run them: the examples
serialized into one [N] string tensor, a classify- or regress-shaped signature's outputs checked and written as
ClassificationResult / RegressionResult (also used by `multi_inference`)."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

from tfzoo.serving.limits import check_examples
from tfzoo.serving.protocol.status import invalid_argument
from tfzoo.serving.protocol.tensor_proto import dtype_enum
from tfzoo.serving.servable import DEFAULT_SIGNATURE, Servable, set_model_spec

CLASSIFY_INPUTS, CLASSIFY_CLASSES, CLASSIFY_SCORES = "inputs", "classes", "scores"
REGRESS_INPUTS, REGRESS_OUTPUTS = "inputs", "outputs"

_Request = classification_pb2.ClassificationRequest | regression_pb2.RegressionRequest
_Response = classification_pb2.ClassificationResponse | regression_pb2.RegressionResponse


def run_classify(servable: Servable, request: classification_pb2.ClassificationRequest,
                 timeout_ms: int = 0) -> classification_pb2.ClassificationResponse:
    """PredictionService.Classify (RunClassify): a classify-shaped signature's classes and scores per example."""
    response = classification_pb2.ClassificationResponse()
    _run_examples(servable, request, "Classify", classification_tensors, classification_result, response,
                  timeout_ms)
    return response


def run_regress(servable: Servable, request: regression_pb2.RegressionRequest,
                timeout_ms: int = 0) -> regression_pb2.RegressionResponse:
    """PredictionService.Regress (RunRegress): a regress-shaped signature's one float per example."""
    response = regression_pb2.RegressionResponse()
    _run_examples(servable, request, "Regress", regression_tensors, regression_result, response, timeout_ms)
    return response


def _run_examples(servable: Servable, request: _Request, api: str, tensors: Callable, write_result: Callable,
                  response: _Response, timeout_ms: int) -> None:
    """The signature's tensors (checked by `tensors`), one run on the serialized examples, the outputs checked and
    written into response.result by `write_result`."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    if signature_name not in servable.signature_defs:
        raise invalid_argument(f"No signature was found with the name: {signature_name}")
    signature = servable.signature_defs[signature_name]
    input_name, output_names = tensors(signature)
    examples = serialized_examples(request.input, servable.max_request_bytes)
    started = time.monotonic()
    outputs = servable.run({input_name: examples}, output_names, timeout_ms)
    servable.metrics.record_runtime(request.model_spec.name, api, time.monotonic() - started)
    set_model_spec(response.model_spec, request.model_spec.name, request.model_spec.signature_name,
                   servable.version)
    write_result(signature, len(examples), dict(zip(output_names, outputs)), response.result)


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


def classification_tensors(signature: meta_graph_pb2.SignatureDef) -> tuple[str, list[str]]:
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


def regression_tensors(signature: meta_graph_pb2.SignatureDef) -> tuple[str, list[str]]:
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


def classification_result(signature: meta_graph_pb2.SignatureDef, num_examples: int,
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


def regression_result(signature: meta_graph_pb2.SignatureDef, num_examples: int, outputs: Mapping[str, np.ndarray],
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


def _shape_debug_string(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"  # TensorShape::DebugString


def _debug_string(message) -> str:
    return text_format.MessageToString(message)  # protobuf's DebugString
