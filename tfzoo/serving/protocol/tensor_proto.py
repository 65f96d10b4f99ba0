"""numpy arrays <-> TensorProto, as TF Serving writes and reads them.

TF Serving answers Predict with the tensor's values in the proto's typed fields (`float_val`, `int64_val`,
`string_val`, ...: `Tensor::AsProtoField`), unless it was started with `--enable_serialization_as_tensor_content`
(`Tensor::AsProtoTensorContent`: the raw bytes in `tensor_content`, strings still in `string_val`). Clients such as
TF Serving's own `mnist_client.py` read the typed fields, so they are the default here too.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from tfzoo.serving.protocol.status import invalid_argument

# The typed field that holds each dtype's values (tensor.proto). Half and bfloat16 values are their 16-bit
# patterns in `half_val`; complex numbers are (real, imaginary) pairs.
_FIELD = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
}


# The dtypes whose typed field holds exactly their values (no 16-bit patterns or pairs), and their numpy types.
NUMPY_TYPES = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64, types_pb2.DT_INT32: np.int32,
                types_pb2.DT_INT64: np.int64, types_pb2.DT_BOOL: np.bool_}


def shape_proto(shape: tuple[int, ...]) -> tensor_shape_pb2.TensorShapeProto:
    """A fully known shape as a TensorShapeProto."""
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape])


def dtype_enum(array: np.ndarray) -> int:
    """The TF DataType enum for a numpy array (object and bytes arrays are DT_STRING)."""
    if array.dtype.kind in "OSU":
        return types_pb2.DT_STRING
    return tf.dtypes.as_dtype(array.dtype).as_datatype_enum


def to_proto(value: np.ndarray, *, tensor_content: bool = False) -> tensor_pb2.TensorProto:
    """`value` as a TensorProto: in its typed field (AsProtoField), or as raw bytes (AsProtoTensorContent).

    Strings (numpy str, bytes or object arrays of bytes/str; str items as UTF-8) go to `string_val`, or with
    `tensor_content` into it as TensorFlow encodes a string list: every length as a varint, then the bytes.
    """
    array = np.asarray(value)
    dtype = dtype_enum(array)
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape_proto(array.shape))
    if dtype == types_pb2.DT_STRING:
        items = [item.encode("utf-8") if isinstance(item, str) else bytes(item) for item in array.flat]
        if tensor_content:
            proto.tensor_content = b"".join(_varint(len(item)) for item in items) + b"".join(items)
        else:
            proto.string_val.extend(items)
    elif tensor_content or dtype not in _FIELD:  # no typed field (e.g. quantized dtypes): tensor_content only
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    elif dtype in (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16):
        proto.half_val.extend(array.reshape(-1).view(np.uint16).tolist())
    elif dtype in (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128):
        pairs = np.stack([array.real.reshape(-1), array.imag.reshape(-1)], axis=-1)
        getattr(proto, _FIELD[dtype]).extend(pairs.reshape(-1).tolist())
    else:
        getattr(proto, _FIELD[dtype]).extend(array.reshape(-1).tolist())
    return proto


def to_array(proto: tensor_pb2.TensorProto, name: str = "") -> np.ndarray:
    """A TensorProto's values (typed fields or tensor_content) as numpy; strings as an object array of bytes.

    A proto whose values do not fit its shape or dtype is INVALID_ARGUMENT "tensor parsing error: NAME", as
    TF Serving answers it. Fewer values than the shape are filled in as TensorFlow fills them (the last one
    repeated), whatever the shape declares: the server checks a request's protos first (`limits.check_tensors`).
    """
    try:
        if proto.dtype == types_pb2.DT_STRING and proto.tensor_content:
            return _decode_string_list(proto)
        if proto.dtype in NUMPY_TYPES:  # read in one numpy call (tf.make_ndarray costs several times more)
            shape = [dim.size for dim in proto.tensor_shape.dim]
            if proto.tensor_content:  # a copy, as TensorFlow's is: the request's bytes stay read-only
                return np.frombuffer(proto.tensor_content, dtype=NUMPY_TYPES[proto.dtype]).reshape(shape).copy()
            values = getattr(proto, _FIELD[proto.dtype])
            if len(values) == np.prod(shape, dtype=np.int64):  # all there (else TensorFlow's fill-in, below)
                return np.array(values, dtype=NUMPY_TYPES[proto.dtype]).reshape(shape)
        array = tf.make_ndarray(proto)
    except (TypeError, ValueError, KeyError, IndexError) as error:
        raise invalid_argument(f"tensor parsing error: {name}") from error
    if proto.dtype == types_pb2.DT_STRING and array.dtype != object:
        array = array.astype(object)
    return array


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _decode_string_list(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """A DT_STRING tensor_content: the varint lengths of every item, then their bytes (TensorFlow's encoding)."""
    shape = [dim.size for dim in proto.tensor_shape.dim]
    count = int(np.prod(shape, dtype=np.int64))
    data, position, lengths = proto.tensor_content, 0, []
    for _ in range(count):
        length = shift = 0
        while True:
            byte = data[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        lengths.append(length)
    items = []
    for length in lengths:
        items.append(data[position:position + length])
        position += length
    if position != len(data):
        raise ValueError("string tensor_content longer than its items")
    array = np.empty(count, dtype=object)
    array[:] = items
    return array.reshape(shape)
