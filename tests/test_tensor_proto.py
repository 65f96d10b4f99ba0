"""numpy <-> TensorProto as TF Serving writes it (Tensor::AsProtoField / AsProtoTensorContent), checked against
TensorFlow's own C++ parser (tf.io.parse_tensor reads a serialized TensorProto with Tensor::FromProto)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from tfzoo.serving.protocol.status import ServingError
from tfzoo.serving.protocol.tensor_proto import to_array, to_proto

ARRAYS = {
    "float": (np.array([[0.5, -1.25], [3.0, np.inf]], np.float32), "float_val"),
    "double": (np.array([1e300, -2.5]), "double_val"),
    "int32": (np.array([[1, -2, 2**31 - 1]], np.int32), "int_val"),
    "int8": (np.array([-128, 127], np.int8), "int_val"),
    "uint8": (np.array([0, 255], np.uint8), "int_val"),
    "int64": (np.array([2**62, -5], np.int64), "int64_val"),
    "uint32": (np.array([2**32 - 1], np.uint32), "uint32_val"),
    "uint64": (np.array([2**64 - 1], np.uint64), "uint64_val"),
    "bool": (np.array([True, False]), "bool_val"),
    "half": (np.array([1.5, -0.25], np.float16), "half_val"),
    "bfloat16": (np.array([1.5, -3.0], ml_dtypes.bfloat16), "half_val"),
    "complex64": (np.array([1 + 2j, -3j], np.complex64), "scomplex_val"),
    "string": (np.array([[b"a", b"\x00\xff"], [b"", "\u00e9".encode()]], dtype=object), "string_val"),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_typed_fields_round_trip_and_tensorflow_reads_them(name: str) -> None:
    array, field = ARRAYS[name]
    proto = to_proto(array)
    assert len(getattr(proto, field)) == (array.size * 2 if array.dtype.kind == "c" else array.size)
    assert not proto.tensor_content  # AsProtoField: TF Serving's default answer
    for parsed in (to_array(proto), tf.io.parse_tensor(proto.SerializeToString(), tf.as_dtype(proto.dtype)).numpy()):
        assert parsed.shape == array.shape
        assert parsed.tolist() == array.tolist()


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_tensor_content_round_trips_and_tensorflow_reads_it(name: str) -> None:
    array, field = ARRAYS[name]
    proto = to_proto(array, tensor_content=True)
    assert proto.tensor_content and not getattr(proto, field)  # strings too, in TensorFlow's string-list encoding
    for parsed in (to_array(proto), tf.io.parse_tensor(proto.SerializeToString(), tf.as_dtype(proto.dtype)).numpy()):
        assert parsed.shape == array.shape
        assert parsed.tolist() == array.tolist()


def test_str_items_are_sent_as_utf8() -> None:
    proto = to_proto(np.array(["\u00e9t\u00e9", "x"]))
    assert proto.dtype == types_pb2.DT_STRING and list(proto.string_val) == ["\u00e9t\u00e9".encode(), b"x"]


def test_a_proto_whose_values_do_not_fit_its_shape_is_a_parsing_error() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    proto.tensor_shape.dim.add(size=2)
    proto.float_val.extend([1.0, 2.0, 3.0])
    with pytest.raises(ServingError, match="tensor parsing error: x") as raised:
        to_array(proto, "x")
    assert raised.value.code.name == "INVALID_ARGUMENT"
    truncated = to_proto(np.array([b"abc", b"de"], dtype=object), tensor_content=True)
    truncated.tensor_content = truncated.tensor_content[:-1]
    with pytest.raises(ServingError, match="tensor parsing error: s"):
        to_array(truncated, "s")
