"""TF Serving's gRPC API: PredictionService (Predict, Classify, Regress, MultiInference, GetModelMetadata) and
ModelService (GetModelStatus, HandleReloadConfigRequest), from tensorflow-serving-api's stubs.

Each RPC hands its request proto to the ModelManager; a ServingError becomes the call's status with TF Serving's
code and message (cut at 1024 characters as grpc_status_util.cc does). A call past its client's deadline ends
with DEADLINE_EXCEEDED for the client, but its graph run is not cut short as TF Serving's
--enforce_session_run_timeout cuts it (a session callable's timeout is fixed when it is built; one per deadline
would cost a graph compilation per request).
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
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
    status_pb2,
)

from tfzoo.serving.manager import ModelManager
from tfzoo.serving.protocol.status import ServingError

logger = logging.getLogger(__name__)

_MAX_ERROR_MESSAGE = 1024
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _rpc(record: bool) -> Callable[[_Method], _Method]:
    """One RPC's wrapper: a ServingError becomes the call's status (its message cut at 1024 characters, as
    grpc_status_util.cc cuts it), any other exception INTERNAL. With `record`, the call goes into the servicer's
    metrics under its method name, as prediction_service_impl.cc records Predict, Classify and Regress
    (request_count for every call, request_latency for an OK one)."""

    def wrap(method: _Method) -> _Method:
        @functools.wraps(method)
        def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            started = time.monotonic()
            code = grpc.StatusCode.OK
            try:
                return method(self, request, context)
            except ServingError as error:
                code, message = error.code, error.message
                if len(message) > _MAX_ERROR_MESSAGE:
                    message = message[:_MAX_ERROR_MESSAGE] + "...TRUNCATED"
            except Exception as error:  # a bug or an unexpected model failure must cost one request, not the server
                logger.exception("%s failed", method.__name__)
                code, message = grpc.StatusCode.INTERNAL, f"Internal error: {error!r}"
            finally:
                if record:
                    self._metrics.record_request(request.model_spec.name, method.__name__, "GRPC", code,
                                                 time.monotonic() - started)
            context.abort(code, message)

        return wrapper  # type: ignore[return-value]

    return wrap


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """PredictionService for the models of a ModelManager, recorded in its metrics."""

    def __init__(self, manager: ModelManager):
        self._manager = manager
        self._metrics = manager.metrics

    @_rpc(record=True)
    def Predict(self, request: predict_pb2.PredictRequest,  # noqa: N802 (the gRPC method's name)
                context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
        return self._manager.predict(request)

    @_rpc(record=True)
    def Classify(self, request: classification_pb2.ClassificationRequest,  # noqa: N802
                 context: grpc.ServicerContext) -> classification_pb2.ClassificationResponse:
        return self._manager.classify(request)

    @_rpc(record=True)
    def Regress(self, request: regression_pb2.RegressionRequest,  # noqa: N802
                context: grpc.ServicerContext) -> regression_pb2.RegressionResponse:
        return self._manager.regress(request)

    @_rpc(record=False)
    def MultiInference(self, request: inference_pb2.MultiInferenceRequest,  # noqa: N802
                       context: grpc.ServicerContext) -> inference_pb2.MultiInferenceResponse:
        return self._manager.multi_inference(request)

    @_rpc(record=False)
    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,  # noqa: N802
                         context: grpc.ServicerContext) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return self._manager.metadata(request)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """ModelService for a ModelManager: version states, and replacing the served model list."""

    def __init__(self, manager: ModelManager):
        self._manager = manager

    @_rpc(record=False)
    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest,  # noqa: N802
                       context: grpc.ServicerContext) -> get_model_status_pb2.GetModelStatusResponse:
        return self._manager.status(request)

    @_rpc(record=False)
    def HandleReloadConfigRequest(self, request: model_management_pb2.ReloadConfigRequest,  # noqa: N802
                                  context: grpc.ServicerContext) -> model_management_pb2.ReloadConfigResponse:
        if request.config.WhichOneof("config") != "model_config_list":
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                               "ModelConfigList is currently supported")
        try:
            self._manager.reload_config(list(request.config.model_config_list.config))
        except ValueError as error:  # a config TF Serving refuses
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
        return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto(error_code=0))


def create_grpc_server(manager: ModelManager, host: str, port: int, max_message_bytes: int,
                       workers: int) -> tuple[grpc.Server, int]:
    """A gRPC server, not started yet, with both services bound to host:port; returns it and the bound port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tfzoo-serve-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),  # answers are as large as the model makes them
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(manager), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # an IPv6 host needs brackets
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:  # grpc's way of saying the port is taken or the host is not local
        raise OSError(f"gRPC cannot listen on {address}: {error}") from error
    return server, bound
