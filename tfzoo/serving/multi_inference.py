"""MultiInference as TF Serving's multi_inference.cc runs it: several classify/regress tasks of one model on the
same tf.Examples, in one graph run."""
from __future__ import annotations

import grpc
from tensorflow_serving.apis import inference_pb2

from tfzoo.serving.classify_regress import (
    classification_result,
    classification_tensors,
    regression_result,
    regression_tensors,
    serialized_examples,
)
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.servable import CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD, Servable, set_model_spec


def run_multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest,
                        timeout_ms: int = 0) -> inference_pb2.MultiInferenceResponse:
    """PredictionService.MultiInference on one loaded version (RunMultiInference)."""
    model_name = ""
    seen: set[str] = set()
    input_names: set[str] = set()
    output_names: set[str] = set()
    tasks = []
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid_argument("Found ModelSpec with an empty model name.")
        if model_name and task.model_spec.name != model_name:
            raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        model_name = task.model_spec.name
        signature_name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature_name in seen:
            raise invalid_argument(f"Duplicate evaluation of signature: {signature_name}")
        seen.add(signature_name)
        if signature_name not in servable.signature_defs:
            raise invalid_argument(f"Requested signature not found in model graph: {signature_name}")
        signature = servable.signature_defs[signature_name]
        if task.method_name == CLASSIFY_METHOD:
            input_name, names = classification_tensors(signature)
        elif task.method_name == REGRESS_METHOD:
            input_name, names = regression_tensors(signature)
        else:
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}")
        input_names.add(input_name)
        output_names.update(names)
        tasks.append((task, signature))
    examples = serialized_examples(request.input, servable.max_request_bytes)
    fetches = sorted(output_names)
    outputs = dict(zip(fetches, servable.run({name: examples for name in sorted(input_names)}, fetches, timeout_ms)))
    servable.metrics.record_examples(model_name, len(examples))
    response = inference_pb2.MultiInferenceResponse()
    for task, signature in tasks:
        result = response.results.add()
        if task.method_name == CLASSIFY_METHOD:
            classification_result(signature, len(examples), outputs, result.classification_result)
        else:
            regression_result(signature, len(examples), outputs, result.regression_result)
        set_model_spec(result.model_spec, task.model_spec.name, task.model_spec.signature_name, servable.version)
    return response
