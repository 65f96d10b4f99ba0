"""TF Serving's REST JSON <-> proto conversions, after `tensorflow_serving/util/json_tensor.cc`.

Requests (`fill_*_request`) are read with TF Serving's rules and error texts: row ("instances") and columnar
("inputs") formats, `{"b64": ...}` strings, NaN/Infinity, each dtype's JSON types and ranges. Answers (`json_from_*`)
are written by `json_arrays`, which the client shares.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

from tfzoo.serving.protocol import json_arrays
from tfzoo.serving.protocol.json_arrays import RequestFormat, debug_string, is_b64, utf8
from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.protocol.tensor_proto import NUMPY_TYPES, shape_proto, to_array, to_proto

Infos = Mapping[str, meta_graph_pb2.TensorInfo]  # a signature's inputs
Tensors = dict[str, tensor_pb2.TensorProto]


def fill_predict_request(body: str | bytes, input_infos: Callable[[str], Infos],
                         request: predict_pb2.PredictRequest) -> RequestFormat:
    """FillPredictRequestFromJson: `request.model_spec.signature_name` and `request.inputs` (typed fields) from
    a REST predict body; values are parsed by the dtypes of `input_infos(signature_name)` ("" when absent).

    Raises ServingError (TF Serving's code and message) for a body that does not fit.
    """
    doc = _document(body, request)
    # numpy would take a boolean for 1 or 0 in a numeric array (`_whole_tensor`), where TF Serving refuses it:
    # without the words true and false anywhere in the body, there is none.
    words = ("true", "false") if isinstance(body, str) else (b"true", b"false")
    whole = not any(word in body for word in words)
    signature = request.model_spec.signature_name
    infos = input_infos(signature)
    if not infos:
        raise invalid_argument(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    if "instances" in doc:
        if "inputs" in doc:
            raise _format_error(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' "
                                     "keys to exist ")
        if type(doc["instances"]) is not list:
            raise _format_error(doc, "Expecting 'instances' to be an list/array")
        if not doc["instances"]:
            raise _format_error(doc, "No values in 'instances' array")
        tensors = _tensors_from_rows(doc["instances"], infos, whole)
        request.inputs.clear()  # the row format replaces all inputs; the columnar one only those it names
    elif "inputs" in doc:
        tensors = _tensors_from_columns(doc["inputs"], infos, whole)
    else:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    for name, tensor in tensors.items():
        request.inputs[name].CopyFrom(tensor)
    return RequestFormat.ROW if "instances" in doc else RequestFormat.COLUMNAR


def fill_examples_request(body: str | bytes,
                          request: classification_pb2.ClassificationRequest | regression_pb2.RegressionRequest) -> None:
    """FillClassifyRegressRequestFromJson: "signature_name", "context" and "examples" (tf.Examples) into `request`."""
    doc = _document(body, request)
    if "context" in doc:
        _fill_example(doc["context"], request.input.example_list_with_context.context)
    if "examples" not in doc:
        raise _format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    if type(doc["examples"]) is not list:
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not doc["examples"]:
        raise _format_error(doc, "'examples' value is an empty array")
    target = request.input.example_list_with_context if "context" in doc else request.input.example_list
    for value in doc["examples"]:
        _fill_example(value, target.examples.add())


fill_classification_request = fill_regression_request = fill_examples_request  # one reader, as in TF Serving


def _document(body: str | bytes, request: Any) -> dict:
    """ParseJson and FillSignature: the body's top-level object; its optional "signature_name" into `request`.
    Of a key given twice, the last value counts (a dict; rapidjson's lookups took the first)."""
    doc = json_arrays.parse(body)
    if type(doc) is not dict:
        raise invalid_argument(f"JSON Value: {debug_string(doc)} Is not object")
    if "signature_name" in doc:
        if type(doc["signature_name"]) is not str:
            raise _format_error(doc, "not formatted correctly. 'signature_name' key must be a string value.")
        request.model_spec.signature_name = doc["signature_name"]
    return doc


def _format_error(doc: dict, message: str) -> ServingError:
    return invalid_argument(f"JSON Value: {debug_string(doc)} {message}")


def _json_type(value: Any) -> str:
    """rapidjson's type name of a value, as TF Serving's messages print it."""
    if value is None or type(value) is bool:
        return "Null" if value is None else str(value)
    return {list: "Array", dict: "Object", str: "String"}.get(type(value), "Number")


def _doubles(values: list | np.ndarray) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except OverflowError:  # an integer token beyond any double: rapidjson's parse fails on it
        raise invalid_argument("JSON Parse error: Number too big to be stored in double.") from None


def _float32(values: list | np.ndarray) -> np.ndarray:
    """rapidjson's GetFloat: the double, rounded to float (out of range: +-inf, as the C++ cast gives)."""
    with np.errstate(over="ignore", under="ignore"):
        return _doubles(values).astype(np.float32)


_INT32_RANGE, _INT64_RANGE = (-2**31, 2**31 - 1), (-2**63, 2**63 - 1)
_INT32 = ("int_val", {int}, _INT32_RANGE, None)  # TF Serving checks int32 range for all of these
# dtype: (its typed field, the types of the JSON values it takes, the range of their integers, the field's values
# for them when not the same)
_KINDS: dict[int, tuple[str, set[type], tuple[int, int] | None, Callable[[list], list] | None]] = {
    types_pb2.DT_FLOAT: ("float_val", {int, float}, None, lambda values: _float32(values).tolist()),
    types_pb2.DT_DOUBLE: ("double_val", {int, float}, None, lambda values: _doubles(values).tolist()),
    types_pb2.DT_INT32: _INT32, types_pb2.DT_INT16: _INT32, types_pb2.DT_INT8: _INT32, types_pb2.DT_UINT8: _INT32,
    types_pb2.DT_STRING: ("string_val", {str}, None,  # b64 values come decoded, as bytes
                          lambda values: [v if type(v) is bytes else utf8(v) for v in values]),
    types_pb2.DT_INT64: ("int64_val", {int}, _INT64_RANGE, None),
    types_pb2.DT_BOOL: ("bool_val", {bool}, None, None),
    types_pb2.DT_UINT32: ("uint32_val", {int}, (0, 2**32 - 1), None),
    types_pb2.DT_UINT64: ("uint64_val", {int}, (0, 2**64 - 1), None),
}


def _fits(items: list, dtype: int) -> bool:
    """Whether JSON values all fit `dtype`, one of `_KINDS`: checked at C speed. (Python ints are unbounded where
    rapidjson makes integers beyond int64/uint64 doubles: both fail the range.)"""
    _, types, bounds, _ = _KINDS[dtype]
    if not set(map(type, items)) <= types:
        return False
    return not bounds or not items or bounds[0] <= min(items) and max(items) <= bounds[1]


def _dtype_name(dtype: int) -> str:
    """TF's DataTypeString: "float", "int32", "complex64", ..."""
    return types_pb2.DataType.Name(dtype)[3:].lower()


def _leaf(value: Any, dtype: int) -> Any:
    """One scalar (or b64 object) of a tensor, checked against its dtype."""
    if type(value) is dict:
        if dtype == types_pb2.DT_STRING:
            return _decode_b64(value)
    elif dtype not in _KINDS:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           f"Conversion of JSON Value: {debug_string(value)} to type: {_dtype_name(dtype)}")
    elif _fits([value], dtype):
        return value
    raise invalid_argument(f"JSON Value: {debug_string(value)} Type: {_json_type(value)} "
                           f"is not of expected type: {_dtype_name(dtype)}")


def _decode_b64(value: Any) -> bytes:
    """JsonDecodeBase64Object: the bytes of a {"b64": ...} object."""
    if not is_b64(value):
        raise invalid_argument(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
    decoded = json_arrays.b64_bytes(value["b64"])
    if decoded is None:
        raise invalid_argument("Unable to base64 decode")
    return decoded


def _whole_tensor(value: Any, dtype: int) -> tensor_pb2.TensorProto | None:
    """A regular, non-empty, boolean-free nested list of numbers (an image, a batch of rows) converted by numpy in
    one call, in a fraction of `_tensor`'s time per value; None for anything else (ragged, mixed, strings, out of
    range, another dtype), which `_tensor` then walks, to accept it or to fail with TF Serving's message."""
    if dtype not in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_INT64):
        return None
    bounds = _KINDS[dtype][2]  # None for the float types, which take any number
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):  # ragged, or an integer beyond any numpy type
        return None
    if not array.size or array.dtype.kind not in ("if" if bounds is None else "i"):
        return None
    if bounds is not None and not (bounds[0] <= array.min() and array.max() <= bounds[1]):
        return None
    array = _float32(array) if dtype == types_pb2.DT_FLOAT else array.astype(NUMPY_TYPES[dtype])
    return to_proto(array)  # in the typed field, as FillTensorProto writes it


def _tensor(value: Any, dtype: int) -> tuple[tuple[int, ...], list]:
    """GetDenseTensorShape and FillTensorProto: the shape of `value` (the sizes along each nested list's first
    element) and its values in row-major order, failing on the first item, depth-first, that does not fit.

    Walks with its own stack (a first-element chain may be nested deeper than Python's recursion limit) and
    takes lists of scalars in one step.
    """
    shape, first = [], value
    while type(first) is list:
        shape.append(len(first))
        first = first[0] if first else None
    rank, out, stack = len(shape), [], [(iter((value,)), 0)]  # iterators over the items found at each level
    while stack:
        items, level = stack[-1]
        for item in items:
            if type(item) is not list:
                if level != rank:
                    raise invalid_argument(f"JSON Value: {debug_string(item)} found at incorrect level: "
                                           f"{level + 1} in the JSON DOM. Expected at level: {rank}")
                out.append(_leaf(item, dtype))
            elif level >= rank:
                raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
            elif len(item) != shape[level]:
                raise invalid_argument(f"Encountered list at unexpected size: {len(item)} at level: {level} "
                                       f"expected size: {shape[level]}")
            elif level + 1 == rank and dtype in _KINDS and _fits(item, dtype):
                out.extend(item)  # a list of scalars that all fit: in one step
            else:
                stack.append((iter(item), level + 1))
                break
        else:
            stack.pop()
    return tuple(shape), out


def _tensor_proto(dtype: int, shape: tuple[int, ...], values: list) -> tensor_pb2.TensorProto:
    """A TensorProto with `values` (accepted JSON values) in the dtype's typed field."""
    tensor = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape_proto(shape))
    if values:  # values of a dtype without a kind never get here (_leaf rejects them)
        field, _, _, encode = _KINDS[dtype]
        getattr(tensor, field).extend(encode(values) if encode else values)
    return tensor


def _tensors_from_rows(rows: list, infos: Infos, whole: bool) -> Tensors:
    """FillTensorMapFromInstancesList: stacks the non-empty `rows` ("instances") into one tensor per input; each
    row's value for an input must have the size and shape of the rows before it (AddInstanceItem). `whole`: the
    rows may be taken by `_whole_tensor` (no booleans in the body)."""
    names = sorted(infos)  # TF Serving's "first" input of a hash map: any fixed choice is as faithful
    if type(rows[0]) is not dict and len(infos) > 1:
        raise invalid_argument("instances is a plain list, but expecting list of objects as multiple input "
                               "tensors required as per tensorinfo_map")
    named = type(rows[0]) is dict and not is_b64(rows[0])
    if whole and not named and (tensor := _whole_tensor(rows, infos[names[0]].dtype)) is not None:
        return {names[0]: tensor}
    stacked: dict[str, tuple[tuple[int, ...], list]] = {}  # name: (shape of one row, values of all rows)
    for index, row in enumerate(rows):
        if named and (type(row) is not dict or is_b64(row)):
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        if not named and type(row) is dict and not is_b64(row):
            raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
        for name, value in row.items() if named else [(names[0], row)]:
            try:
                if name not in infos:
                    raise invalid_argument(f"JSON object: does not have named input: {name}")
                shape, values = _tensor(value, infos[name].dtype)
                known_shape, known_values = stacked.setdefault(name, (shape, []))
                if math.prod(known_shape) != len(values):
                    raise invalid_argument(f"Expecting tensor size: {math.prod(known_shape)} but got: {len(values)}")
                if known_shape != shape:
                    raise invalid_argument(f"Expecting shape {_shape_text(known_shape)} but got: {_shape_text(shape)}")
                known_values.extend(values)
            except ServingError as error:  # nested as absl::Status::ToString writes it
                where = f"{index} key: {name}" if named else index
                raise invalid_argument(f"Failed to process element: {where} of 'instances' list. "
                                       f"Error: {error.code.name}: {error.message}") from error
        if named and set(row) != set(names):
            raise invalid_argument(f"Failed to process element: {index} of 'instances' list. JSON object: "
                                   f"{debug_string(row)} keys must be equal to: {','.join(names)}")
    return {name: _tensor_proto(infos[name].dtype, (len(rows), *shape), values)
            for name, (shape, values) in stacked.items()}


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _tensors_from_columns(value: Any, infos: Infos, whole: bool) -> Tensors:
    """FillTensorMapFromInputsMap: "inputs" as one unnamed value (list, scalar or b64) or an object of them.
    `whole`: as for `_tensors_from_rows`."""
    unnamed = type(value) is not dict or is_b64(value)
    if unnamed and len(infos) > 1:
        raise invalid_argument("inputs is a plain value/list, but expecting an object as multiple input "
                               "tensors required as per tensorinfo_map")
    columns = {next(iter(infos)): value} if unnamed else value
    tensors = {}
    for name in sorted(infos):
        if name not in columns:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        dtype, item = infos[name].dtype, columns[name]
        tensor = _whole_tensor(item, dtype) if whole else None
        tensors[name] = tensor if tensor is not None else _tensor_proto(dtype, *_tensor(item, dtype))
    return tensors


def _fill_example(value: Any, example: example_pb2.Example) -> None:
    """MakeExampleFromJsonObject: each member is a feature, one value or a list of them (AddValueToFeature): its
    kind is set by its first value and the others must match; strings and b64 are bytes, booleans and integers
    int64, other numbers float."""
    if type(value) is not dict:
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        kind, items = None, []
        for item in content if type(content) is list else [content]:
            if item is None or type(item) is list or (type(item) is dict and not is_b64(item)):
                raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_json_type(item)}")
            # rapidjson reads an integer beyond int64/uint64 as a double: a float feature
            is_float = type(item) is float or type(item) is int and not -2**63 <= item <= 2**64 - 1
            item_kind = "bytes" if type(item) in (str, dict) else "float" if is_float else "int64"
            if kind not in (None, item_kind):
                raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")
            kind = item_kind
            if type(item) is int and item > 2**63 - 1:
                raise invalid_argument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
            items.append(_decode_b64(item) if type(item) is dict else utf8(item) if type(item) is str else
                         int(item) if type(item) is bool else item)
        feature = feature_pb2.Feature()
        if kind is not None:
            getattr(feature, f"{kind}_list").value.extend(_float32(items).tolist() if kind == "float" else items)
        example.features.feature[name].CopyFrom(feature)


def json_from_tensors(tensors: Mapping[str, tensor_pb2.TensorProto], format: RequestFormat) -> str:
    """MakeJsonFromTensors: {"predictions": [...]} (ROW) or {"outputs": ...} (COLUMNAR), as TF Serving writes it
    (`json_arrays.json_from_output_arrays`). Reads typed fields and tensor_content; dtypes TF Serving cannot write
    fail once there is a value to write."""
    arrays = {}
    for name, tensor in tensors.items():
        dims = [d.size for d in tensor.tensor_shape.dim]
        if tensor.dtype not in _KINDS and math.prod(dims):
            raise invalid_argument(f"Failed to write JSON value for tensor type: {_dtype_name(tensor.dtype)}")
        arrays[name] = to_array(tensor, name) if tensor.dtype in _KINDS else np.zeros(dims)  # no values: [] only
    return json_arrays.json_from_output_arrays(arrays, format)


def json_from_classification_result(result: classification_pb2.ClassificationResult) -> str:
    """MakeJsonFromClassificationResult: {"results": [[[label, score], ...], ...]}, one list per example."""
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = json_arrays.Rows()
    for classes in (classifications.classes for classifications in result.classifications):
        scores = json_arrays.decimal_tokens(np.array([c.score for c in classes], dtype=np.float32))
        rows.append([[json_arrays.quote(c.label), score] for c, score in zip(classes, scores)])
    return json_arrays.pretty({"results": rows})


def json_from_regression_result(result: regression_pb2.RegressionResult) -> str:
    """MakeJsonFromRegressionResult: {"results": [value, ...]}, one value per example."""
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    values = json_arrays.decimal_tokens(np.array([r.value for r in result.regressions], dtype=np.float32))
    return json_arrays.pretty({"results": values}, single_line_arrays=True)


def json_from_error(message: str) -> str:
    """MakeJsonFromStatus: {"error": message}."""
    return json_arrays.pretty({"error": json_arrays.quote(message)})
