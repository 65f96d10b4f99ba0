"""Predict as TF Serving's predict_util.cc runs it (RunPredict): inputs by alias or the signature's defaults, the
output filter, outputs in typed fields or as tensor_content."""
from __future__ import annotations

import time
from collections.abc import Sequence

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import predict_pb2

from tfzoo.serving.limits import check_tensors
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.protocol.tensor_proto import to_array, to_proto
from tfzoo.serving.servable import DEFAULT_SIGNATURE, Servable, set_model_spec


def run_predict(servable: Servable, request: predict_pb2.PredictRequest, *, tensor_content: bool = False,
                timeout_ms: int = 0) -> predict_pb2.PredictResponse:
    """PredictionService.Predict on one loaded version; outputs as raw bytes with `tensor_content` (TF Serving's
    --enable_serialization_as_tensor_content)."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    if signature_name not in servable.signature_defs:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                           f'Serving signature key "{signature_name}" not found.')
    signature = servable.signature_defs[signature_name]
    feeds = _input_values(signature, request, servable.max_request_bytes)
    aliases = _output_aliases(signature, request.output_filter)
    started = time.monotonic()
    outputs = servable.run(feeds, [signature.outputs[alias].name for alias in aliases], timeout_ms)
    servable.metrics.record_runtime(request.model_spec.name, "Predict", time.monotonic() - started)
    response = predict_pb2.PredictResponse()
    set_model_spec(response.model_spec, request.model_spec.name, signature_name, servable.version)
    for alias, value in zip(aliases, outputs):
        response.outputs[alias].CopyFrom(to_proto(value, tensor_content=tensor_content))
    return response


def _input_values(signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest,
                  max_request_bytes: int) -> dict[str, np.ndarray]:
    """{tensor name: value} for every signature input, from the request or the signature's defaults; the request's
    tensors are checked against `max_request_bytes` before any is made an array (`limits.check_tensors`)."""
    sent, expected = set(request.inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")
    check_tensors(request.inputs, max_request_bytes)
    feeds = {}
    for alias, info in sorted(signature.inputs.items()):
        if alias in request.inputs:
            proto = request.inputs[alias]
        elif alias in signature.defaults:
            proto = signature.defaults[alias]
        else:
            raise invalid_argument(f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                                   f"and no defaults were provided.")
        feeds[info.name] = to_array(proto, alias)
    extra = sent - expected
    if extra:
        raise invalid_argument(f"Inputs contains keys not found in signature or defaults: {', '.join(sorted(extra))}")
    return feeds


def _output_aliases(signature: meta_graph_pb2.SignatureDef, output_filter: Sequence[str]) -> list[str]:
    """The output aliases to fetch: the filter's, checked, or every output of the signature."""
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                                   f"the set {{{','.join(sorted(signature.outputs))}}}.")
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen or sorted(signature.outputs)
