"""TF Serving's REST JSON written from numpy arrays: the part of `json_tensor` a REST client needs, without
TensorFlow (whose protos `json_tensor` reads and writes, and whose import takes seconds).

`json_from_request_tensors` writes a predict body, `json_from_output_arrays` an answer as TF Serving writes it, and
`arrays_from_json_outputs` reads the "outputs" of an answer into arrays of the signature's dtypes.
"""
from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from tfzoo.serving.protocol.rapidjson import PrettyWriter, quote, utf8
from tfzoo.serving.protocol.status import invalid_argument

_BYTES_SUFFIX = "_bytes"        # output tensors named so are written as {"b64": ...} (json_tensor.cc)


class RequestFormat(enum.Enum):
    """How a Predict request lists its tensors, and so how the response lists them."""

    ROW = "row"             # {"instances": [...]}  -> {"predictions": [...]}
    COLUMNAR = "columnar"   # {"inputs": ...}       -> {"outputs": ...}


def json_from_request_tensors(tensors: Mapping[str, np.ndarray], format: RequestFormat,
                              signature_name: str = "") -> str:
    """A REST predict body for `tensors`: {"signature_name"?, "instances": [...]} or {"inputs": ...}.

    Written with the rules `fill_predict_request` reads: one tensor is written unnamed, several as named
    objects; strings go as JSON strings, or as {"b64": ...} when they are not UTF-8 or their name ends in
    "_bytes"; floats in the shortest text that parses back to the same value.
    """
    if not tensors:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(tensors)
    arrays = {name: np.asarray(tensors[name]) for name in names}
    if format is RequestFormat.ROW:
        batch = _batch_size({name: list(array.shape) for name, array in arrays.items()})
    elif format is not RequestFormat.COLUMNAR:
        raise invalid_argument("Invalid request format")
    columns = {name: _column_from_array(name, array) for name, array in arrays.items()}
    writer = PrettyWriter()
    writer.single_line_arrays = True  # compact: only objects take a line per member
    writer.start_object()
    if signature_name:
        writer.key("signature_name")
        writer.string(signature_name)
    if format is RequestFormat.ROW:
        writer.key("instances")
        _write_rows(writer, columns, batch)
    else:
        writer.key("inputs")
        _write_columns(writer, columns)
    writer.end_object()
    return writer.text()


def json_from_output_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    """{"outputs": ...} for numpy arrays, as TF Serving's columnar answer is written (`json_tensor.json_from_tensors`
    with RequestFormat.COLUMNAR): one output as its value alone, strings named "*_bytes" as {"b64": ...}."""
    if not arrays:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    columns = {}
    for name in sorted(arrays):
        array = np.asarray(arrays[name])
        as_b64 = array.dtype.kind in "OSU" and name.endswith(_BYTES_SUFFIX)
        columns[name] = _column(array.shape, array, as_b64, invalid_utf8_as_b64=False)
    writer = PrettyWriter()
    writer.start_object()
    writer.key("outputs")
    _write_columns(writer, columns)
    writer.end_object()
    return writer.text()


def arrays_from_json_outputs(body: str | bytes, dtypes: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    """The "outputs" of a columnar REST predict answer as arrays of the signature's output `dtypes` (object for
    strings, held as bytes; {"b64": ...} decoded). {"error": message} raises ServingError(INVALID_ARGUMENT)."""
    # TF Serving writes a string's bytes as they are, UTF-8 or not: kept as lone surrogates, given back by utf8().
    text = bytes(body).decode("utf-8", "surrogateescape") if not isinstance(body, str) else body
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise invalid_argument(f"JSON Parse error: {error}") from None
    if not isinstance(doc, dict):
        raise invalid_argument("the answer is not a JSON object")
    if "error" in doc:
        raise invalid_argument(str(doc["error"]))
    if "outputs" not in doc:
        raise invalid_argument("Missing 'outputs' key")
    outputs = doc["outputs"]
    if len(dtypes) == 1 and not (isinstance(outputs, dict) and set(outputs) == set(dtypes)):
        outputs = {next(iter(dtypes)): outputs}  # one output is written as its value alone
    if not isinstance(outputs, dict):
        raise invalid_argument("'outputs' is not an object of named outputs")
    unknown = set(outputs) - set(dtypes)
    if unknown:
        raise invalid_argument(f"unknown output(s) {', '.join(sorted(unknown))}")
    return {name: _array(name, value, dtypes[name]) for name, value in outputs.items()}


def _array(name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    if dtype != object:
        try:
            return np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as error:
            raise invalid_argument(f"output {name!r} is not a dense {dtype} tensor: {error}") from None
    array = np.array(value, dtype=object)
    if array.size:
        array = np.vectorize(lambda item: _string(name, item), otypes=[object])(array)
    return array


def _string(name: str, item: Any) -> bytes:
    if isinstance(item, str):
        return utf8(item)
    if isinstance(item, dict) and len(item) == 1 and isinstance(item.get("b64"), str):
        try:
            return base64.b64decode(item["b64"], validate=True)
        except binascii.Error:
            raise invalid_argument(f"output {name!r} holds invalid base64") from None
    raise invalid_argument(f"output {name!r} holds {type(item).__name__} where strings were expected")


# ---------------------------------------------------------------------------------------------------------------
# Tensors -> JSON values (MakeRowFormatJsonFromTensors, MakeColumnarFormatJsonFromTensors, WriteDecimal)
# ---------------------------------------------------------------------------------------------------------------

class _B64(str):
    """A value written as {"b64": <this text>}."""


class _Column(NamedTuple):
    """A tensor ready to write: its dims and one JSON token per value, in row-major order."""

    dims: tuple[int, ...]
    tokens: list[str]
    has_b64: bool


def _batch_size(dims: dict[str, list[int]]) -> int:
    """The row format's shared first dimension (MakeRowFormatJsonFromTensors' checks)."""
    batch = -1
    for name, shape in dims.items():
        if not shape:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and shape[0] != batch:
            raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: {shape[0]} "
                                   f"expecting: {batch}")
        batch = shape[0]
    return batch


def _column_from_array(name: str, array: np.ndarray) -> _Column:
    """A request tensor's values; strings named "*_bytes", or not UTF-8, as b64."""
    if array.dtype.kind not in "fiubOSU" or array.dtype.kind == "f" and array.dtype.itemsize > 8:
        raise invalid_argument(f"Tensor name: {name} of dtype {array.dtype} cannot be written as JSON")
    return _column(array.shape, array, name.endswith(_BYTES_SUFFIX), invalid_utf8_as_b64=True)


def _column(dims: tuple[int, ...], array: np.ndarray, as_b64: bool, invalid_utf8_as_b64: bool) -> _Column:
    flat = array.reshape(-1)
    kind = array.dtype.kind
    if kind == "f":
        tokens = _decimal_tokens(flat)
    elif kind in "iu":
        tokens = list(map(str, flat.tolist()))
    elif kind == "b":
        tokens = ["true" if v else "false" for v in flat.tolist()]
    else:
        tokens = [_string_token(v, as_b64, invalid_utf8_as_b64) for v in flat.tolist()]
    return _Column(tuple(dims), tokens, any(type(t) is _B64 for t in tokens))


def _string_token(value: bytes | str, as_b64: bool, invalid_utf8_as_b64: bool) -> str:
    """A string value as a quoted JSON string, or as _B64. TF Serving writes a string's bytes as they are,
    UTF-8 or not; a client must not (its JSON would not be UTF-8), so it sends such bytes as b64."""
    if not isinstance(value, (bytes, str)):
        raise invalid_argument(f"Cannot write {type(value).__name__} value as a JSON string")
    raw = value if isinstance(value, bytes) else utf8(value)
    if as_b64:
        return _B64(base64.b64encode(raw).decode("ascii"))
    if isinstance(value, str):
        return quote(value)
    try:
        return quote(raw.decode("utf-8"))
    except UnicodeDecodeError:
        if invalid_utf8_as_b64:
            return _B64(base64.b64encode(raw).decode("ascii"))
        return quote(raw.decode("utf-8", "surrogateescape"))


def _decimal_tokens(values: np.ndarray) -> list[str]:
    """WriteDecimal for each value: six significant digits ("%g", as absl::StrCat) if they read back to the
    same float/double, else full precision (9 or 17 digits); ".0" added to whole numbers not in exponent form;
    NaN, Infinity and -Infinity as such."""
    doubles = values.astype(np.float64).tolist()
    tokens = ["%.6g" % v for v in doubles]
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        back = np.array([float(t) for t in tokens], dtype=np.float64).astype(values.dtype)
    wide = "%.9g" if values.dtype.itemsize <= 4 else "%.17g"
    for i in np.flatnonzero(back != values).tolist():
        tokens[i] = wide % doubles[i]
    tokens = [t if "." in t or "e" in t else t + ".0" for t in tokens]
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        v = doubles[i]
        tokens[i] = "NaN" if v != v else "Infinity" if v > 0 else "-Infinity"
    return tokens


def _write_token(writer: PrettyWriter, token: str) -> None:
    if type(token) is _B64:
        writer.start_object()
        writer.key("b64")
        writer.string(token)
        writer.end_object()
    else:
        writer.value(token)


def _write_values(writer: PrettyWriter, column: _Column, dim: int, offset: int) -> int:
    """AddTensorValues: the values from `offset` nested as dims[dim:] (one bare value when no dims are left);
    returns the offset after them."""
    dims = column.dims
    if dim >= len(dims):
        _write_token(writer, column.tokens[offset])
        return offset + 1
    if dim == len(dims) - 1 and not column.has_b64:
        writer.scalar_array(column.tokens[offset:offset + dims[dim]])
        return offset + dims[dim]
    writer.start_array()
    for _ in range(dims[dim]):
        offset = _write_values(writer, column, dim + 1, offset)
    writer.end_array()
    return offset


def _write_rows(writer: PrettyWriter, columns: dict[str, _Column], batch: int) -> None:
    """The row format: a list of `batch` items, each the tensors' slices (named objects when several)."""
    named = len(columns) > 1
    offsets = dict.fromkeys(columns, 0)
    layout = writer.single_line_arrays
    writer.start_array()
    for _ in range(batch):
        if named:
            writer.start_object()
        writer.single_line_arrays = True  # TF Serving writes each item's arrays on one line
        for name, column in columns.items():
            if named:
                writer.key(name)
            offsets[name] = _write_values(writer, column, 1, offsets[name])
        writer.single_line_arrays = layout
        if named:
            writer.end_object()
    writer.end_array()


def _write_columns(writer: PrettyWriter, columns: dict[str, _Column]) -> None:
    """The columnar format: the one tensor, or an object of named tensors."""
    named = len(columns) > 1
    if named:
        writer.start_object()
    for name, column in columns.items():
        if named:
            writer.key(name)
        _write_values(writer, column, 0, 0)
    if named:
        writer.end_object()
