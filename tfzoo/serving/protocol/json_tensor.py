"""TF Serving's REST JSON <-> proto conversion: a Python port of `tensorflow_serving/util/json_tensor.cc`.

The server side (`fill_*_request`, `json_from_*`) reproduces TF Serving's behaviour and error texts: row
("instances"/"predictions") and columnar ("inputs"/"outputs") formats, `{"b64": ...}` strings and `_bytes`
output names, NaN/Infinity, rapidjson's number types and parse errors, and the float formatting of
`WriteDecimal`. The client side (`json_arrays`: `json_from_request_tensors`, `arrays_from_json_outputs`, without
TensorFlow) is the inverse, built from the same writers, so that what the client writes the server reads back
identically.

JSON itself is read and written as TF Serving's rapidjson does (`rapidjson.py`: its number types, parse errors,
duplicate keys, pretty layout and float digits).
"""
from __future__ import annotations

import binascii
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import grpc
import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

from tfzoo.serving.protocol import rapidjson
from tfzoo.serving.protocol.json_arrays import (
    _BYTES_SUFFIX,
    RequestFormat,
    _batch_size,
    _Column,
    _column,
    _decimal_tokens,
    _write_columns,
    _write_rows,
    json_from_request_tensors,
)
from tfzoo.serving.protocol.rapidjson import (
    MISSING,
    JsonObject,
    PrettyWriter,
    debug_string,
    json_type,
    member,
    utf8,
)
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.protocol.tensor_proto import shape_proto, to_array

__all__ = [
    "RequestFormat", "fill_predict_request", "fill_classification_request", "fill_regression_request",
    "json_from_tensors", "json_from_classification_result", "json_from_regression_result", "json_from_error",
    "is_b64", "json_from_request_tensors",
]



# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------

def fill_predict_request(body: str | bytes,
                         input_infos: Callable[[str], Mapping[str, meta_graph_pb2.TensorInfo]],
                         request: predict_pb2.PredictRequest) -> RequestFormat:
    """FillPredictRequestFromJson: `request.model_spec.signature_name` and `request.inputs` (typed fields) from
    a REST predict body; values are parsed by the dtypes of `input_infos(signature_name)` ("" when absent).

    Raises ServingError (TF Serving's code and message) for a body that does not fit.
    """
    doc = _document(body)
    _fill_signature(doc, request)
    signature = request.model_spec.signature_name
    infos = input_infos(signature)
    if not infos:
        raise invalid_argument(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    instances, inputs = member(doc, "instances"), member(doc, "inputs")
    if instances is not MISSING:
        if inputs is not MISSING:
            raise _format_error(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' "
                                     "keys to exist ")
        if type(instances) is not list:
            raise _format_error(doc, "Expecting 'instances' to be an list/array")
        if not instances:
            raise _format_error(doc, "No values in 'instances' array")
        tensors = _tensors_from_rows(instances, infos, "instances")
        request.inputs.clear()  # the row format replaces all inputs; the columnar one only those it names
        request_format = RequestFormat.ROW
    elif inputs is not MISSING:
        tensors = _tensors_from_columns(inputs, infos, "inputs")
        request_format = RequestFormat.COLUMNAR
    else:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    for name, tensor in tensors.items():
        request.inputs[name].CopyFrom(tensor)
    return request_format


def fill_classification_request(body: str | bytes, request: classification_pb2.ClassificationRequest) -> None:
    """FillClassificationRequestFromJson: "signature_name", "context" and "examples" into `request`."""
    _fill_examples_request(body, request)


def fill_regression_request(body: str | bytes, request: regression_pb2.RegressionRequest) -> None:
    """FillRegressionRequestFromJson: "signature_name", "context" and "examples" into `request`."""
    _fill_examples_request(body, request)


def json_from_tensors(tensors: Mapping[str, tensor_pb2.TensorProto], format: RequestFormat) -> str:
    """MakeJsonFromTensors: {"predictions": [...]} (ROW) or {"outputs": ...} (COLUMNAR), laid out as TF Serving's
    pretty writer does. Reads typed fields and tensor_content.

    Strings that are not UTF-8 are kept as lone surrogates (errors="surrogateescape"): encode the result with
    `.encode("utf-8", "surrogateescape")` to send TF Serving's exact bytes.
    """
    if not tensors:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    if format not in (RequestFormat.ROW, RequestFormat.COLUMNAR):
        raise invalid_argument("Invalid request format")
    names = sorted(tensors)  # TF Serving walks a hash map: any fixed order is as faithful
    if format is RequestFormat.ROW:
        batch = _batch_size({name: [d.size for d in tensors[name].tensor_shape.dim] for name in names})
    columns = {name: _column_from_proto(name, tensors[name]) for name in names}
    writer = PrettyWriter()
    writer.start_object()
    if format is RequestFormat.ROW:
        writer.key("predictions")
        _write_rows(writer, columns, batch)
    else:
        writer.key("outputs")
        _write_columns(writer, columns)
    writer.end_object()
    return writer.text()


def json_from_classification_result(result: classification_pb2.ClassificationResult) -> str:
    """MakeJsonFromClassificationResult: {"results": [[[label, score], ...], ...]}, one list per example."""
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    writer = PrettyWriter()
    writer.start_object()
    writer.key("results")
    writer.start_array()
    for classifications in result.classifications:
        scores = _decimal_tokens(np.array([c.score for c in classifications.classes], dtype=np.float32))
        writer.single_line_arrays = True
        writer.start_array()
        for item, score in zip(classifications.classes, scores):
            writer.start_array()
            writer.string(item.label)
            writer.value(score)
            writer.end_array()
        writer.end_array()
        writer.single_line_arrays = False
    writer.end_array()
    writer.end_object()
    return writer.text()


def json_from_regression_result(result: regression_pb2.RegressionResult) -> str:
    """MakeJsonFromRegressionResult: {"results": [value, ...]}, one value per example."""
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    writer = PrettyWriter()
    writer.start_object()
    writer.key("results")
    writer.single_line_arrays = True
    writer.scalar_array(_decimal_tokens(np.array([r.value for r in result.regressions], dtype=np.float32)))
    writer.end_object()
    return writer.text()


def json_from_error(message: str) -> str:
    """MakeJsonFromStatus: {"error": message}."""
    writer = PrettyWriter()
    writer.start_object()
    writer.key("error")
    writer.string(message)
    writer.end_object()
    return writer.text()


def is_b64(value: Any) -> bool:
    """Whether a JSON value is binary data, {"b64": "<base64>"}: one key, "b64", holding a string."""
    if type(value) is JsonObject:
        return len(value) == 1 and value[0][0] == "b64" and type(value[0][1]) is str
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("b64"), str)


def _document(body: str | bytes) -> JsonObject:
    """ParseJson: the request's top-level JSON object, or TF Serving's parse error."""
    text = bytes(body).decode("utf-8", "surrogateescape") if not isinstance(body, str) else body
    if not text:
        raise invalid_argument("JSON Parse error: The document is empty")
    value = rapidjson.parse(text)
    if type(value) is not JsonObject:
        raise invalid_argument(f"JSON Value: {debug_string(value)} Is not object")
    return value


def _format_error(doc: JsonObject, message: str) -> ServingError:
    return invalid_argument(f"JSON Value: {debug_string(doc)} {message}")


# ---------------------------------------------------------------------------------------------------------------
# JSON values -> tensor values (AddValueToTensor and FillTensorProto)
# ---------------------------------------------------------------------------------------------------------------

class _Kind(NamedTuple):
    """How JSON values become one dtype's TensorProto values."""

    field: str                                  # the typed field
    accepts: Callable[[list], bool]             # every item is of the JSON type the dtype takes (IsNumber, IsInt...)
    encode: Callable[[list], list] | None = None  # the accepted JSON values as the field's values


def _types_within(*types: type) -> Callable[[list], bool]:
    allowed = frozenset(types)
    return lambda items: set(map(type, items)) <= allowed  # C-speed check of a whole list


def _ints_within(low: int, high: int) -> Callable[[list], bool]:
    def accepts(items: list) -> bool:
        return set(map(type, items)) <= {int} and (not items or (low <= min(items) and max(items) <= high))
    return accepts


def _float32(values: list) -> list[float]:
    """rapidjson's GetFloat: the double, rounded to float (out of range: +-inf, as the C++ cast gives)."""
    with np.errstate(over="ignore", under="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np.float32).tolist()


def _doubles(values: list) -> list[float]:
    return np.asarray(values, dtype=np.float64).tolist()


def _encode_strings(values: list) -> list[bytes]:
    return [utf8(v) if type(v) is str else v for v in values]  # b64 values are already bytes


_INT32 = _Kind("int_val", _ints_within(-2**31, 2**31 - 1))  # TF Serving checks int32 range for all of these
_KINDS: dict[int, _Kind] = {
    types_pb2.DT_FLOAT: _Kind("float_val", _types_within(int, float), _float32),
    types_pb2.DT_DOUBLE: _Kind("double_val", _types_within(int, float), _doubles),
    types_pb2.DT_INT32: _INT32,
    types_pb2.DT_INT16: _INT32,
    types_pb2.DT_INT8: _INT32,
    types_pb2.DT_UINT8: _INT32,
    types_pb2.DT_STRING: _Kind("string_val", _types_within(str), _encode_strings),
    types_pb2.DT_INT64: _Kind("int64_val", _ints_within(-2**63, 2**63 - 1)),
    types_pb2.DT_BOOL: _Kind("bool_val", _types_within(bool)),
    types_pb2.DT_UINT32: _Kind("uint32_val", _ints_within(0, 2**32 - 1)),
    types_pb2.DT_UINT64: _Kind("uint64_val", _ints_within(0, 2**64 - 1)),
}


def _dtype_name(dtype: int) -> str:
    """TF's DataTypeString: "float", "int32", "complex64", "float_ref", ..."""
    if dtype == types_pb2.DT_INVALID:
        return "INVALID"
    try:
        return types_pb2.DataType.Name(dtype)[3:].lower()
    except ValueError:
        return f"unknown dtype enum ({dtype})"


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid_argument(f"JSON Value: {debug_string(value)} Type: {json_type(value)} "
                            f"is not of expected type: {_dtype_name(dtype)}")


def _decode_b64(value: Any) -> bytes:
    """JsonDecodeBase64Object: the bytes of a {"b64": ...} object."""
    if not is_b64(value):
        raise invalid_argument(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    decoded = _base64_unescape(value[0][1])
    if decoded is None:
        raise invalid_argument("Unable to base64 decode")
    return decoded


_BASE64 = re.compile(r"([A-Za-z0-9+/ \t\n\v\f\r]*)([=.][=. \t\n\v\f\r]*)?")
_ASCII_SPACE = re.compile(r"[ \t\n\v\f\r]")


def _base64_unescape(text: str) -> bytes | None:
    """absl::Base64Unescape: standard alphabet, whitespace skipped, padding ('=' or '.') optional but, when
    present, complete; None when the text is not base64."""
    match = _BASE64.fullmatch(text)
    if not match:
        return None
    data = _ASCII_SPACE.sub("", match.group(1))
    padding = sum(c in "=." for c in match.group(2) or "")
    if len(data) % 4 == 1 or padding not in (0, (0, None, 2, 1)[len(data) % 4]):
        return None
    return binascii.a2b_base64(data + "=" * (-len(data) % 4))


def _leaf(value: Any, dtype: int, kind: _Kind | None) -> Any:
    """One scalar (or b64 object) of a tensor, checked against its dtype."""
    if type(value) is JsonObject:
        if dtype == types_pb2.DT_STRING:
            return _decode_b64(value)
        raise _type_error(value, dtype)
    if kind is None:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           f"Conversion of JSON Value: {debug_string(value)} to type: {_dtype_name(dtype)}")
    if not kind.accepts([value]):
        raise _type_error(value, dtype)
    return value


def _dense_shape(value: Any) -> tuple[int, ...]:
    """GetDenseTensorShape: the sizes along the first element of each nested list (a scalar has shape ())."""
    shape = []
    while type(value) is list:
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _fill_values(value: Any, shape: tuple[int, ...], dtype: int, out: list) -> int:
    """FillTensorProto: appends the values of `value` (nested lists of `shape`) to `out`, in row-major order,
    failing on the first item, depth-first, that does not fit; returns how many it appended.

    Walks with its own stack (a first-element chain may be nested deeper than Python's recursion limit) and
    takes lists of scalars in one step.
    """
    kind, rank, start = _KINDS.get(dtype), len(shape), len(out)
    stack = [(iter((value,)), 0)]  # iterators over the items found at each level
    while stack:
        items, level = stack[-1]
        for item in items:
            if type(item) is not list:
                if level != rank:
                    raise invalid_argument(f"JSON Value: {debug_string(item)} found at incorrect level: "
                                           f"{level + 1} in the JSON DOM. Expected at level: {rank}")
                out.append(_leaf(item, dtype, kind))
            elif level >= rank:
                raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
            elif len(item) != shape[level]:
                raise invalid_argument(f"Encountered list at unexpected size: {len(item)} at level: {level} "
                                       f"expected size: {shape[level]}")
            elif level + 1 < rank:
                stack.append((iter(item), level + 1))
                break
            elif kind is not None and kind.accepts(item):
                out.extend(item)
            else:
                for leaf in item:
                    if type(leaf) is list:
                        raise invalid_argument(f"Encountered list at unexpected level: {rank} expected < {rank}")
                    out.append(_leaf(leaf, dtype, kind))
        else:
            stack.pop()
    return len(out) - start


def _tensor(dtype: int, shape: Iterable[int], values: list) -> tensor_pb2.TensorProto:
    """A TensorProto with `values` (accepted JSON values) in the dtype's typed field."""
    tensor = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape_proto(tuple(shape)))
    kind = _KINDS.get(dtype)
    if values:  # values of a dtype without a kind never get here (_leaf rejects them)
        getattr(tensor, kind.field).extend(kind.encode(values) if kind.encode else values)
    return tensor


def _status_text(error: ServingError) -> str:
    """absl::Status::ToString, as TF Serving nests one error in another: "INVALID_ARGUMENT: message"."""
    return f"{error.code.name}: {error.message}"


class _Rows:
    """One named tensor being stacked from "instances" (AddInstanceItem's size and shape maps)."""

    def __init__(self, shape: tuple[int, ...], size: int):
        self.shape, self.size, self.values = shape, size, []


def _add_instance_item(value: Any, name: str, infos: Mapping[str, meta_graph_pb2.TensorInfo],
                       rows: dict[str, _Rows]) -> None:
    """AddInstanceItem: one instance's value for input `name`, which must have the size and shape of the
    instances before it."""
    if name not in infos:
        raise invalid_argument(f"JSON object: does not have named input: {name}")
    shape = _dense_shape(value)
    values: list = []
    size = _fill_values(value, shape, infos[name].dtype, values)
    known = rows.setdefault(name, _Rows(shape, size))
    if known.size != size:
        raise invalid_argument(f"Expecting tensor size: {known.size} but got: {size}")
    if known.shape != shape:
        raise invalid_argument(f"Expecting shape {_shape_text(known.shape)} but got: {_shape_text(shape)}")
    known.values.extend(values)  # a key repeated in one instance adds its values twice, as in TF Serving


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _is_element_object(value: Any) -> bool:
    """An instance given as named inputs: an object that is not a b64 value."""
    return type(value) is JsonObject and not is_b64(value)


def _tensors_from_rows(rows: list, infos: Mapping[str, meta_graph_pb2.TensorInfo],
                       key: str) -> dict[str, tensor_pb2.TensorProto]:
    """FillTensorMapFromInstancesList: stacks the non-empty `rows` ("instances") into one tensor per input."""
    names = sorted(infos)  # TF Serving's "first" input of a hash map: any fixed choice is as faithful
    if type(rows[0]) is not JsonObject and len(infos) > 1:
        raise invalid_argument(f"{key} is a plain list, but expecting list of objects as multiple input "
                               "tensors required as per tensorinfo_map")
    named = _is_element_object(rows[0])
    stacked: dict[str, _Rows] = {}
    for index, row in enumerate(rows):
        if named:
            if not _is_element_object(row):
                raise invalid_argument(f"Expecting object but got list at item {index} of input list")
            for name, value in row:
                try:
                    _add_instance_item(value, name, infos, stacked)
                except ServingError as error:
                    raise invalid_argument(f"Failed to process element: {index} key: {name} of '{key}' list. "
                                           f"Error: {_status_text(error)}") from error
            if {name for name, _ in row} != set(names):
                raise invalid_argument(f"Failed to process element: {index} of '{key}' list. JSON object: "
                                       f"{debug_string(row)} keys must be equal to: {','.join(names)}")
        else:
            if _is_element_object(row):
                raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
            try:
                _add_instance_item(row, names[0], infos, stacked)
            except ServingError as error:
                raise invalid_argument(f"Failed to process element: {index} of '{key}' list. "
                                       f"Error: {_status_text(error)}") from error
    return {name: _tensor(infos[name].dtype, (len(rows), *item.shape), item.values)
            for name, item in stacked.items()}


def _tensors_from_columns(value: Any, infos: Mapping[str, meta_graph_pb2.TensorInfo],
                          key: str) -> dict[str, tensor_pb2.TensorProto]:
    """FillTensorMapFromInputsMap: "inputs" as one unnamed value (list, scalar or b64) or an object of them."""
    names = sorted(infos)
    unnamed = type(value) is not JsonObject or is_b64(value)
    if unnamed and len(infos) > 1:
        raise invalid_argument(f"{key} is a plain value/list, but expecting an object as multiple input "
                               "tensors required as per tensorinfo_map")
    tensors = {}
    for name in names[:1] if unnamed else names:
        item = value if unnamed else member(value, name)
        if item is MISSING:
            raise invalid_argument(f"Missing named input: {name} in '{key}' object.")
        shape, values = _dense_shape(item), []
        _fill_values(item, shape, infos[name].dtype, values)
        tensors[name] = _tensor(infos[name].dtype, shape, values)
    return tensors


def _fill_signature(doc: JsonObject, request: Any) -> None:
    """FillSignature: the optional "signature_name" string."""
    signature = member(doc, "signature_name")
    if signature is MISSING:
        return
    if type(signature) is not str:
        raise invalid_argument(f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key "
                               "must be a string value.")
    request.model_spec.signature_name = signature


# ---------------------------------------------------------------------------------------------------------------
# Classify / Regress requests: JSON objects -> tf.Example
# ---------------------------------------------------------------------------------------------------------------

def _fill_examples_request(body: str | bytes, request: Any) -> None:
    """FillClassifyRegressRequestFromJson."""
    doc = _document(body)
    _fill_signature(doc, request)
    context = member(doc, "context")
    if context is not MISSING:
        _fill_example(context, request.input.example_list_with_context.context)
    examples = member(doc, "examples")
    if examples is MISSING:
        raise _format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    if type(examples) is not list:
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    target = (request.input.example_list_with_context if context is not MISSING
              else request.input.example_list).examples
    for value in examples:
        _fill_example(value, target.add())


def _fill_example(value: Any, example: example_pb2.Example) -> None:
    """MakeExampleFromJsonObject: each member is a feature, one value or a list of them."""
    if type(value) is not JsonObject:
        raise invalid_argument(f"Example must be JSON object but got JSON {json_type(value)}")
    for name, content in value:
        example.features.feature[name].CopyFrom(_feature(name, content if type(content) is list else [content]))


_FEATURE_LISTS = {"bytes": "bytes_list", "float": "float_list", "int64": "int64_list"}


def _feature(name: str, values: list) -> feature_pb2.Feature:
    """AddValueToFeature for each value: the feature's kind is set by its first value; the others must match.
    Strings and b64 are bytes, booleans and integers int64, other numbers float."""
    kind, items = None, []
    for value in values:
        if value is None or type(value) is list or (type(value) is JsonObject and not is_b64(value)):
            raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
        value_kind = ("bytes" if type(value) in (str, JsonObject) else
                      "float" if type(value) is float else "int64")
        if kind not in (None, value_kind):
            raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")
        kind = value_kind
        if type(value) is int and value > 2**63 - 1:
            raise invalid_argument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        items.append(_decode_b64(value) if type(value) is JsonObject else
                     utf8(value) if type(value) is str else int(value) if type(value) is bool else value)
    feature = feature_pb2.Feature()
    if kind is not None:
        getattr(feature, _FEATURE_LISTS[kind]).value.extend(_float32(items) if kind == "float" else items)
    return feature


# ---------------------------------------------------------------------------------------------------------------
# Tensors -> JSON values (MakeRowFormatJsonFromTensors, MakeColumnarFormatJsonFromTensors, WriteDecimal)
# ---------------------------------------------------------------------------------------------------------------

def _column_from_proto(name: str, tensor: tensor_pb2.TensorProto) -> _Column:
    """A response tensor's values; DT_STRING ones named "*_bytes" as b64. Dtypes TF Serving cannot write fail
    once there is a value to write."""
    dims = tuple(d.size for d in tensor.tensor_shape.dim)
    if tensor.dtype not in _KINDS:
        if math.prod(dims):
            raise invalid_argument(f"Failed to write JSON value for tensor type: {_dtype_name(tensor.dtype)}")
        return _Column(dims, [], False)
    as_b64 = tensor.dtype == types_pb2.DT_STRING and name.endswith(_BYTES_SUFFIX)
    return _column(dims, to_array(tensor, name), as_b64, invalid_utf8_as_b64=False)


