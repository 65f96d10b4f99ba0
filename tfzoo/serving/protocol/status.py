"""TF Serving's status codes: the error every request path raises, and its HTTP status on the REST API."""
from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:  # only named in a type hint: importing TensorFlow would cost a REST client seconds
    import tensorflow as tf

# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
# The reverse, for a client reading an HTTP status. Where several codes share one (400, 409, 500), the most
# common of them.
CODE_BY_HTTP_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    409: grpc.StatusCode.ABORTED,
    500: grpc.StatusCode.INTERNAL,
    **{status: code for code, status in HTTP_STATUS.items() if status not in (400, 409, 500)},
}
_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}  # TF's error codes are gRPC's numbers


def code_from_value(value: int | None) -> grpc.StatusCode:
    """The gRPC status code for TF's (and StatusProto's) integer error code; UNKNOWN for anything else."""
    return _CODE_BY_VALUE.get(value, grpc.StatusCode.UNKNOWN)


class ServingError(Exception):
    """A request that fails with the gRPC status `code` and TF Serving's `message`."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API answers this error with."""
        return HTTP_STATUS.get(self.code, 500)

    @classmethod
    def from_tf(cls, error: tf.errors.OpError) -> ServingError:
        """The error a TensorFlow session or op raised, with its own code and message, as TF Serving passes it on."""
        return cls(code_from_value(error.error_code), error.message)


def invalid_argument(message: str) -> ServingError:
    """An INVALID_ARGUMENT ServingError (the most common kind: a request that does not fit)."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)
