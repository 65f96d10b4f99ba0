"""TF Serving's REST JSON <-> proto conversion: a Python port of `tensorflow_serving/util/json_tensor.cc`.

The server side (`fill_*_request`, `json_from_*`) reproduces TF Serving's behaviour and error texts: row
("instances"/"predictions") and columnar ("inputs"/"outputs") formats, `{"b64": ...}` strings and `_bytes`
output names, NaN/Infinity, rapidjson's number types and parse errors, and the float formatting of
`WriteDecimal`. The client side (`json_from_request_tensors`, `arrays_from_json_response`) is the inverse, built
from the same helpers, so that what the client writes the server reads back identically.

How JSON is read: TF Serving parses with rapidjson (iterative, NaN/Inf allowed, stopping after the root
value). Python's `json` agrees with it on nearly every document and is fast, so it is tried first; documents it
cannot handle the same way (nesting deeper than Python's recursion limit, numbers rapidjson rejects or types
differently, lone UTF-16 surrogates, anything `json` rejects) go through `_RapidJsonParser`, a port of
rapidjson's state machine that also yields its error texts and offsets. Objects are kept as `_JsonObject` (a
tuple of (key, value) pairs) because rapidjson keeps duplicate keys: lookups take the first, loops see all.
"""
from __future__ import annotations

import base64
import binascii
import enum
import json
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

from tfzoo.serving.protocol.status import ServingError, invalid_argument
from tfzoo.serving.protocol.tensor_proto import shape_proto, to_array

__all__ = [
    "RequestFormat", "fill_predict_request", "fill_classification_request", "fill_regression_request",
    "json_from_tensors", "json_from_classification_result", "json_from_regression_result", "json_from_error",
    "is_b64", "json_from_request_tensors", "arrays_from_json_response",
]

_BYTES_SUFFIX = "_bytes"        # output tensors named so are written as {"b64": ...} (json_tensor.cc)
_DEBUG_STRING_BYTES = 256       # TF Serving truncates JSON quoted in error messages (kMaxJsonDebugStringBytes)


class RequestFormat(enum.Enum):
    """How a Predict request lists its tensors, and so how the response lists them."""

    ROW = "row"             # {"instances": [...]}  -> {"predictions": [...]}
    COLUMNAR = "columnar"   # {"inputs": ...}       -> {"outputs": ...}


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
    instances, inputs = _member(doc, "instances"), _member(doc, "inputs")
    if instances is not _MISSING:
        if inputs is not _MISSING:
            raise _format_error(doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' "
                                     "keys to exist ")
        if type(instances) is not list:
            raise _format_error(doc, "Expecting 'instances' to be an list/array")
        if not instances:
            raise _format_error(doc, "No values in 'instances' array")
        tensors = _tensors_from_rows(instances, infos, "instances")
        request.inputs.clear()  # the row format replaces all inputs; the columnar one only those it names
        request_format = RequestFormat.ROW
    elif inputs is not _MISSING:
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
    writer = _PrettyWriter()
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
    writer = _PrettyWriter()
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
    writer = _PrettyWriter()
    writer.start_object()
    writer.key("results")
    writer.single_line_arrays = True
    writer.scalar_array(_decimal_tokens(np.array([r.value for r in result.regressions], dtype=np.float32)))
    writer.end_object()
    return writer.text()


def json_from_error(message: str) -> str:
    """MakeJsonFromStatus: {"error": message}."""
    writer = _PrettyWriter()
    writer.start_object()
    writer.key("error")
    writer.string(message)
    writer.end_object()
    return writer.text()


def is_b64(value: Any) -> bool:
    """Whether a JSON value is binary data, {"b64": "<base64>"}: one key, "b64", holding a string."""
    if type(value) is _JsonObject:
        return len(value) == 1 and value[0][0] == "b64" and type(value[0][1]) is str
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("b64"), str)


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
    writer = _PrettyWriter()
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


def arrays_from_json_response(body: str | bytes,
                              output_infos: Mapping[str, meta_graph_pb2.TensorInfo]) -> dict[str, np.ndarray]:
    """The tensors of a REST predict response ({"predictions": ...} or {"outputs": ...}) as numpy arrays in the
    dtypes of `output_infos` (strings as bytes, b64 decoded), parsed as `fill_predict_request` parses inputs.

    {"error": message} raises ServingError(INVALID_ARGUMENT, message).
    """
    doc = _document(body)
    error = _member(doc, "error")
    if error is not _MISSING:
        raise invalid_argument(error if type(error) is str else _debug_string(error))
    if not output_infos:
        raise invalid_argument("Failed to get output map")
    predictions, outputs = _member(doc, "predictions"), _member(doc, "outputs")
    if predictions is not _MISSING:
        if type(predictions) is not list:
            raise _format_error(doc, "Expecting 'predictions' to be an list/array")
        if not predictions:  # a batch of 0: the outputs' own shapes, with 0 rows
            return {name: to_array(_empty_batch(info), name) for name, info in output_infos.items()}
        tensors = _tensors_from_rows(predictions, output_infos, "predictions")
    elif outputs is not _MISSING:
        tensors = _tensors_from_columns(outputs, output_infos, "outputs")
    else:
        raise invalid_argument("Missing 'outputs' or 'predictions' key")
    return {name: to_array(tensor, name) for name, tensor in tensors.items()}


# ---------------------------------------------------------------------------------------------------------------
# JSON documents: values are None, bool, int, float, str, list and _JsonObject, as rapidjson types them
# (int: an integer token within int64/uint64; float: any other number, NaN and Infinity included).
# ---------------------------------------------------------------------------------------------------------------

class _JsonObject(tuple):
    """A JSON object as its (key, value) pairs, in order and with duplicate keys, as rapidjson keeps them."""


_MISSING = object()


def _member(obj: _JsonObject, key: str) -> Any:
    """The value of the first `key` member (rapidjson's FindMember), or _MISSING."""
    for name, value in obj:
        if name == key:
            return value
    return _MISSING


def _json_type(value: Any) -> str:
    """rapidjson's type name of a value, as TF Serving's messages print it."""
    if value is None:
        return "Null"
    if value is True or value is False:
        return str(value)
    if type(value) is list:
        return "Array"
    if type(value) is _JsonObject:
        return "Object"
    return "String" if type(value) is str else "Number"


def _utf8(text: str) -> bytes:
    """A JSON string's bytes: raw request bytes that were not UTF-8 come back unchanged (surrogateescape)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


# Python's json types or accepts these differently from rapidjson (see _RapidJsonParser): lone surrogate
# escapes, positive exponents of 3+ digits (rapidjson's "Number too big"), integer parts of 19+ digits (beyond
# int64 rapidjson makes them doubles, and may overflow). Separate searches, each anchored on a few characters,
# scan a large body fastest; a match inside a string only costs the slower parser.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BIG_EXPONENT = re.compile(r"[eE]\+?[0-9]{3}")
_LONG_INTEGER = re.compile(r"[\[,:][ \t\n\r]*-?[0-9]{19}")  # a number's integer part follows [ , or :


def _python_json_agrees(text: str) -> bool:
    """Whether Python's json reads `text` as rapidjson does (when it reads it at all)."""
    return not (("\\u" in text and _SURROGATE_ESCAPE.search(text)) or _BIG_EXPONENT.search(text)
                or _LONG_INTEGER.search(text))


_DECODER = json.JSONDecoder(object_pairs_hook=_JsonObject)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _document(body: str | bytes) -> _JsonObject:
    """ParseJson: the request's top-level JSON object, or TF Serving's parse error."""
    text = bytes(body).decode("utf-8", "surrogateescape") if not isinstance(body, str) else body
    if not text:
        raise invalid_argument("JSON Parse error: The document is empty")
    start = 1 if text.startswith("\ufeff") else 0  # rapidjson's UTF-8 stream skips a byte order mark
    value = _MISSING
    if _python_json_agrees(text):
        try:
            value, _ = _DECODER.raw_decode(text, _WHITESPACE.match(text, start).end())
        except (ValueError, RecursionError):
            value = _MISSING
    if type(value) is not _JsonObject:  # also lets rapidjson judge root scalars such as "1."
        value = _RapidJsonParser(text, start).parse()
    if type(value) is not _JsonObject:
        raise invalid_argument(f"JSON Value: {_debug_string(value)} Is not object")
    return value


class _RapidJsonParser:
    """rapidjson's iterative parser (kParseIterativeFlag | kParseNanAndInfFlag | kParseStopWhenDoneFlag):
    a state machine with its own stack, so nesting depth is unbounded, and rapidjson's error texts."""

    # States (reader.h IterativeParsingState). The *_FINISH ones pass straight back to the enclosing state;
    # rapidjson's Finish state is where parsing stops, having read the root (kParseStopWhenDoneFlag).
    (START, VALUE, OBJECT_INITIAL, MEMBER_KEY, KEY_VALUE_DELIMITER, MEMBER_VALUE, MEMBER_DELIMITER,
     OBJECT_FINISH, ARRAY_INITIAL, ELEMENT, ELEMENT_DELIMITER, ARRAY_FINISH) = range(12)
    _SCALAR_TOKENS = '"ftn#'  # string, false, true, null, and '#' for anything else (a number, or garbage)
    _PREDICT = {
        START: {"[": ARRAY_INITIAL, "{": OBJECT_INITIAL, **dict.fromkeys(_SCALAR_TOKENS, VALUE)},
        OBJECT_INITIAL: {"}": OBJECT_FINISH, '"': MEMBER_KEY},
        MEMBER_KEY: {":": KEY_VALUE_DELIMITER},
        KEY_VALUE_DELIMITER: {"[": ARRAY_INITIAL, "{": OBJECT_INITIAL, **dict.fromkeys(_SCALAR_TOKENS, MEMBER_VALUE)},
        MEMBER_VALUE: {"}": OBJECT_FINISH, ",": MEMBER_DELIMITER},
        MEMBER_DELIMITER: {'"': MEMBER_KEY, "}": OBJECT_FINISH},
        ARRAY_INITIAL: {"[": ARRAY_INITIAL, "]": ARRAY_FINISH, "{": OBJECT_INITIAL,
                        **dict.fromkeys(_SCALAR_TOKENS, ELEMENT)},
        ELEMENT: {"]": ARRAY_FINISH, ",": ELEMENT_DELIMITER},
        ELEMENT_DELIMITER: {"[": ARRAY_INITIAL, "]": ARRAY_FINISH, "{": OBJECT_INITIAL,
                            **dict.fromkeys(_SCALAR_TOKENS, ELEMENT)},
    }
    _TOKENS = {c: c for c in '[]{},:"ftn'}
    # rapidjson's message for an unexpected token in each state (HandleError).
    _UNEXPECTED = {
        START: "The document is empty.",
        OBJECT_INITIAL: "Missing a name for object member.",
        MEMBER_DELIMITER: "Missing a name for object member.",
        MEMBER_KEY: "Missing a colon after a name of object member.",
        MEMBER_VALUE: "Missing a comma or '}' after an object member.",
        KEY_VALUE_DELIMITER: "Invalid value.",
        ARRAY_INITIAL: "Invalid value.",
        ELEMENT_DELIMITER: "Invalid value.",
        ELEMENT: "Missing a comma or ']' after an array element.",
    }
    _ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
    _STRING_RUN = re.compile(r'[^"\\\x00-\x1f]*')
    _DIGITS = re.compile(r"[0-9]*")
    _NUMBER = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([-+]?)([0-9]+))?")
    _LITERALS = {"n": ("null", None), "t": ("true", True), "f": ("false", False)}
    _HEX4 = re.compile(r"[0-9A-Fa-f]{4}")

    def __init__(self, text: str, start: int):
        self._text = text
        self._pos = start

    def _peek(self) -> str:
        # rapidjson's memory stream reads NUL at the end; a NUL byte inside the text stops it the same way.
        return self._text[self._pos] if self._pos < len(self._text) else "\0"

    def _consume(self, char: str) -> bool:
        if self._peek() == char:
            self._pos += 1
            return True
        return False

    def _error(self, message: str, pos: int | None = None) -> ServingError:
        """TF Serving's parse error. rapidjson's offset is one byte past the position it points at (its UTF-8
        stream reads a byte ahead), capped at the end of the input."""
        pos = self._pos if pos is None else pos
        total = len(_utf8(self._text))
        offset = min(len(_utf8(self._text[:pos])) + 1, total)
        return invalid_argument(f"JSON Parse error: {message} at offset: {offset}")

    def parse(self) -> Any:
        """The root value (any JSON type); text after it is ignored (kParseStopWhenDoneFlag)."""
        text, end, skip = self._text, len(self._text), _WHITESPACE.match
        predict, tokens = self._PREDICT, self._TOKENS
        pos = skip(text, self._pos).end()
        state = self.START
        frames: list[list] = []  # [state to return to, items (values or (key, value) pairs), pending key]
        while pos < end and text[pos] != "\0":
            target = predict[state].get(tokens.get(text[pos], "#"))
            if target is None:
                self._pos = pos
                raise self._error(self._UNEXPECTED[state])
            value = _MISSING
            if target == self.OBJECT_INITIAL or target == self.ARRAY_INITIAL:
                back = state
                if state == self.ARRAY_INITIAL or state == self.ELEMENT_DELIMITER:
                    back = self.ELEMENT
                elif state == self.KEY_VALUE_DELIMITER:
                    back = self.MEMBER_VALUE
                frames.append([back, [], None])
                pos += 1
                state = target
            elif target == self.OBJECT_FINISH or target == self.ARRAY_FINISH:
                if state == self.MEMBER_DELIMITER or state == self.ELEMENT_DELIMITER:  # no trailing commas
                    self._pos = pos
                    raise self._error(self._UNEXPECTED[state])
                back, items, _ = frames.pop()
                pos += 1
                value = _JsonObject(items) if target == self.OBJECT_FINISH else items
                state = back
            elif target == self.MEMBER_KEY:
                self._pos = pos
                frames[-1][2] = self._string()
                pos = self._pos
                state = target
            elif target == self.VALUE or target == self.MEMBER_VALUE or target == self.ELEMENT:
                self._pos = pos
                value = self._scalar()
                pos = self._pos
                state = target
            else:  # a ':' or ','
                pos += 1
                state = target
            if value is not _MISSING:
                if not frames:
                    return value  # the root is complete
                frame = frames[-1]
                if frame[2] is None:
                    frame[1].append(value)
                else:
                    frame[1].append((frame[2], value))
                    frame[2] = None
            if pos < end and text[pos] in " \t\n\r":
                pos = skip(text, pos).end()
        self._pos = pos
        raise self._error(self._UNEXPECTED[state])

    def _scalar(self) -> Any:
        """ParseValue for null, true, false, strings and numbers."""
        char = self._text[self._pos]
        if char == '"':
            return self._string()
        if char not in self._LITERALS:
            return self._number()
        word, value = self._LITERALS[char]
        if self._text.startswith(word, self._pos):
            self._pos += len(word)
            return value
        self._pos += 1
        all(self._consume(c) for c in word[1:])  # rapidjson points past the letters that did match
        raise self._error("Invalid value.")

    def _string(self) -> str:
        """ParseString: the text between quotes, escapes resolved (\\uXXXX surrogates must pair)."""
        self._pos += 1
        parts = []
        while True:
            run = self._STRING_RUN.match(self._text, self._pos)
            parts.append(run.group())
            self._pos = run.end()
            char = self._peek()
            if char == '"':
                self._pos += 1
                return "".join(parts)
            if char != "\\":  # a control character; NUL and the end of input are a missing quote
                raise self._error("Missing a closing quotation mark in string." if char == "\0"
                                  else "Invalid encoding in string.")
            escape = self._pos
            self._pos += 1
            char = self._peek()
            if char in self._ESCAPES:
                parts.append(self._ESCAPES[char])
                self._pos += 1
            elif char == "u":
                self._pos += 1
                code = self._hex4(escape)
                if 0xD800 <= code <= 0xDFFF:
                    if code > 0xDBFF or not (self._consume("\\") and self._consume("u")):
                        raise self._error("The surrogate pair in string is invalid.", escape)
                    low = self._hex4(escape)
                    if not 0xDC00 <= low <= 0xDFFF:
                        raise self._error("The surrogate pair in string is invalid.", escape)
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                parts.append(chr(code))
            else:
                raise self._error("Invalid escape character in string.", escape)

    def _hex4(self, escape: int) -> int:
        match = self._HEX4.match(self._text, self._pos)
        if not match:
            raise self._error("Incorrect hex digit after \\u escape in string.", escape)
        self._pos = match.end()
        return int(match.group(), 16)

    def _number(self) -> int | float:
        """ParseNumber: an int when rapidjson stores an integer (int64/uint64 range), else a float.

        Values are correctly rounded, where rapidjson (without kParseFullPrecisionFlag) may be an ulp off for
        numbers of more than 15 significant digits or exponents beyond +-22.
        """
        start = self._pos
        match = self._NUMBER.match(self._text, start)
        if match and self._text[match.end():match.end() + 1] not in (".", "e", "E"):
            self._pos = match.end()
            minus, integer, fraction, exponent_sign, exponent = match.groups()
        else:  # NaN, Infinity or a malformed number: go character by character, as rapidjson does
            parts = self._scan_number()
            if type(parts) is float:
                return parts
            minus, integer, fraction, exponent_sign, exponent = parts
        if exponent is not None:
            exponent = exponent.lstrip("0") or "0"
            # rapidjson gives up on positive exponents past 308 plus the fraction digits it folded in.
            if exponent_sign != "-" and (len(exponent) > 10 or int(exponent) > 308 + _folded_fraction_digits(
                    integer, fraction or "", bool(minus))):
                raise self._error("Number too big to be stored in double.", start)
        elif fraction is None and len(integer) <= 20:
            value = -int(integer) if minus else int(integer)
            if -2**63 <= value <= 2**64 - 1:
                return value
        value = float(self._text[start:self._pos])
        if math.isinf(value):
            raise self._error("Number too big to be stored in double.", start)
        return value

    def _scan_number(self) -> float | tuple:
        """rapidjson's number scanner, for what the regex does not take: NaN/Inf, or its error for a malformed
        number. Returns the value (NaN, +-Infinity) or the parts _NUMBER's groups would have."""
        minus = "-" if self._consume("-") else ""
        char = self._peek()
        if char in ("N", "I"):
            value = None
            self._pos += 1
            if char == "N":
                if self._consume("a") and self._consume("N"):
                    value = math.nan
            elif self._consume("n") and self._consume("f"):
                value = -math.inf if minus else math.inf
                if self._peek() == "i" and not all(self._consume(c) for c in "inity"):
                    raise self._error("Invalid value.")
            if value is None:
                raise self._error("Invalid value.")
            return value
        if not "0" <= char <= "9":
            raise self._error("Invalid value.")
        integer = self._digits(1 if char == "0" else None)
        fraction = exponent_sign = exponent = None
        if self._consume("."):
            if not "0" <= self._peek() <= "9":
                raise self._error("Miss fraction part in number.")
            fraction = self._digits()
        if self._consume("e") or self._consume("E"):
            exponent_sign = "+" if self._consume("+") else "-" if self._consume("-") else ""
            if not "0" <= self._peek() <= "9":
                raise self._error("Miss exponent in number.")
            exponent = self._digits()
        return minus, integer, fraction, exponent_sign, exponent

    def _digits(self, count: int | None = None) -> str:
        begin = self._pos
        self._pos = begin + count if count else self._DIGITS.match(self._text, begin).end()
        return self._text[begin:self._pos]


def _folded_fraction_digits(integer: str, fraction: str, minus: bool) -> int:
    """ParseNumber's `-expFrac`: how many fraction digits rapidjson folds into the significand (while it fits
    2^53, then up to 17 significant digits; leading zeros of a zero significand always count)."""
    limit = 2**63 if minus else 2**64 - 1
    significand, significant = 0, -1  # significant: significandDigit, digits after the first
    for digit in integer:
        if significand * 10 + int(digit) > limit:  # rapidjson goes on in a double, folding nothing more
            significand = -1
            break
        significand = significand * 10 + int(digit)
        significant += 1
    folded = 0
    if significand >= 0:
        for digit in fraction:
            if significand > 2**53 - 1:
                break
            significand = significand * 10 + int(digit)
            folded += 1
            significant += significand != 0
    nonzero = significand != 0
    for digit in fraction[folded:]:
        if significant >= 17:
            break
        folded += 1
        nonzero = nonzero or digit != "0"
        significant += nonzero
    return folded


# ---------------------------------------------------------------------------------------------------------------
# Writing JSON: rapidjson's PrettyWriter layout, and the debug strings TF Serving quotes in errors
# ---------------------------------------------------------------------------------------------------------------

# rapidjson escapes '"', '\' and control characters (\b \t \n \f \r, else \u00XX); everything else is raw.
_ESCAPE = {i: f"\\u{i:04X}" for i in range(0x20)} | {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r",
                                                      ord('"'): '\\"', ord("\\"): "\\\\"}


def _quote(text: str) -> str:
    return f'"{text.translate(_ESCAPE)}"'


class _PrettyWriter:
    """rapidjson::PrettyWriter's output: members one per line, 4-space indent; arrays likewise unless
    `single_line_arrays` (kFormatSingleLineArray: "[1, 2]"), which is checked at each value, as rapidjson does.
    With `max_bytes`, `in_limit()` tells whether the output is still under it (JsonWriterWithLimit)."""

    def __init__(self, max_bytes: int | None = None):
        self._parts: list[str] = []
        self._levels: list[list] = []  # [in_array, value_count]
        self._max_bytes = max_bytes
        self._size = 0
        self.single_line_arrays = False

    def text(self) -> str:
        return "".join(self._parts)

    def in_limit(self) -> bool:
        return self._max_bytes is None or self._size < self._max_bytes

    def _put(self, text: str) -> None:
        self._parts.append(text)
        if self._max_bytes is not None:
            self._size += len(_utf8(text))

    def _indent(self) -> str:
        return "    " * len(self._levels)

    def _prefix(self) -> None:
        """What goes before a value: the separator and line break of its array or object."""
        if not self._levels:
            return
        level = self._levels[-1]
        if level[0]:
            if level[1]:
                self._put(", " if self.single_line_arrays else ",")
            if not self.single_line_arrays:
                self._put("\n" + self._indent())
        elif level[1] % 2:
            self._put(": ")
        else:
            self._put(",\n" + self._indent() if level[1] else "\n" + self._indent())
        level[1] += 1

    def value(self, token: str) -> None:
        """A number, true/false/null or an already quoted string."""
        self._prefix()
        self._put(token)

    def string(self, text: str) -> None:
        self.value(_quote(text))

    key = string  # a member name is a string in the object's key position

    def start_object(self) -> None:
        self._prefix()
        self._put("{")
        self._levels.append([False, 0])

    def end_object(self) -> None:
        count = self._levels.pop()[1]
        self._put("\n" + self._indent() + "}" if count else "}")

    def start_array(self) -> None:
        self._prefix()
        self._put("[")
        self._levels.append([True, 0])

    def end_array(self) -> None:
        count = self._levels.pop()[1]
        self._put("\n" + self._indent() + "]" if count and not self.single_line_arrays else "]")

    def scalar_array(self, tokens: list[str]) -> None:
        """start_array(), value(t) for each token, end_array(), in one go."""
        self._prefix()
        if not tokens:
            self._put("[]")
        elif self.single_line_arrays:
            self._put("[" + ", ".join(tokens) + "]")
        else:
            inner = "\n" + self._indent() + "    "
            self._put("[" + inner + ("," + inner).join(tokens) + "\n" + self._indent() + "]")


class _Key(str):
    """A member name in _debug_string's walk."""


_END = object()


def _debug_string(value: Any) -> str:
    """JsonValueToDebugString: `value` in single-line-array pretty form, cut off once 256 bytes are written.

    Walks with its own stack: a value may be nested far deeper than Python's recursion limit.
    """
    writer = _PrettyWriter(max_bytes=_DEBUG_STRING_BYTES)
    writer.single_line_arrays = True
    stack: list[tuple[Iterable, Callable[[], None] | None]] = [(iter((value,)), None)]
    while stack and writer.in_limit():
        items, close = stack[-1]
        item = next(items, _END)
        if item is _END:
            stack.pop()
            if close is not None:
                close()
        elif type(item) is list:
            writer.start_array()
            stack.append((iter(item), writer.end_array))
        elif type(item) is _JsonObject:
            writer.start_object()
            stack.append((iter([part for k, v in item for part in (_Key(k), v)]), writer.end_object))
        elif type(item) is float and not math.isfinite(item):
            writer.value("")  # rapidjson's writer fails on NaN/Infinity after writing the separator: stop there
            break
        else:
            writer.value(_scalar_token(item))
    return writer.text()


def _scalar_token(value: Any) -> str:
    """A scalar JSON value as rapidjson's Writer prints it."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is float:
        return _shortest_double(value)
    return _quote(value) if isinstance(value, str) else str(value)


def _shortest_double(value: float) -> str:
    """rapidjson's Writer::Double: shortest round-trip digits, laid out by its Prettify (1.0, 1e21, 1e-7)."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    exponent = (int(exp_text) if exp_text else 0) - len(fraction) + len(digits) - len(digits.rstrip("0"))
    digits = digits.rstrip("0")
    length, point = len(digits), len(digits) + exponent  # value = 0.DIGITS * 10^point
    if 0 <= exponent and point <= 21:
        text = digits + "0" * exponent + ".0"
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        text = (digits if length == 1 else digits[0] + "." + digits[1:]) + f"e{point - 1}"
    return ("-" if value < 0 else "") + text


def _format_error(doc: _JsonObject, message: str) -> ServingError:
    return invalid_argument(f"JSON Value: {_debug_string(doc)} {message}")


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
    return [_utf8(v) if type(v) is str else v for v in values]  # b64 values are already bytes


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
    return invalid_argument(f"JSON Value: {_debug_string(value)} Type: {_json_type(value)} "
                            f"is not of expected type: {_dtype_name(dtype)}")


def _decode_b64(value: Any) -> bytes:
    """JsonDecodeBase64Object: the bytes of a {"b64": ...} object."""
    if not is_b64(value):
        raise invalid_argument(f"JSON Value: {_debug_string(value)} not formatted correctly for base64 data")
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
    if type(value) is _JsonObject:
        if dtype == types_pb2.DT_STRING:
            return _decode_b64(value)
        raise _type_error(value, dtype)
    if kind is None:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                           f"Conversion of JSON Value: {_debug_string(value)} to type: {_dtype_name(dtype)}")
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
                    raise invalid_argument(f"JSON Value: {_debug_string(item)} found at incorrect level: "
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
    return type(value) is _JsonObject and not is_b64(value)


def _tensors_from_rows(rows: list, infos: Mapping[str, meta_graph_pb2.TensorInfo],
                       key: str) -> dict[str, tensor_pb2.TensorProto]:
    """FillTensorMapFromInstancesList: stacks the non-empty `rows` ("instances") into one tensor per input."""
    names = sorted(infos)  # TF Serving's "first" input of a hash map: any fixed choice is as faithful
    if type(rows[0]) is not _JsonObject and len(infos) > 1:
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
                                       f"{_debug_string(row)} keys must be equal to: {','.join(names)}")
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
    unnamed = type(value) is not _JsonObject or is_b64(value)
    if unnamed and len(infos) > 1:
        raise invalid_argument(f"{key} is a plain value/list, but expecting an object as multiple input "
                               "tensors required as per tensorinfo_map")
    tensors = {}
    for name in names[:1] if unnamed else names:
        item = value if unnamed else _member(value, name)
        if item is _MISSING:
            raise invalid_argument(f"Missing named input: {name} in '{key}' object.")
        shape, values = _dense_shape(item), []
        _fill_values(item, shape, infos[name].dtype, values)
        tensors[name] = _tensor(infos[name].dtype, shape, values)
    return tensors


def _empty_batch(info: meta_graph_pb2.TensorInfo) -> tensor_pb2.TensorProto:
    """A 0-row tensor for an output listed in an empty "predictions": [0, the output's other dims]."""
    dims = [max(d.size, 0) for d in info.tensor_shape.dim[1:]] if not info.tensor_shape.unknown_rank else []
    return tensor_pb2.TensorProto(dtype=info.dtype, tensor_shape=shape_proto((0, *dims)))


def _fill_signature(doc: _JsonObject, request: Any) -> None:
    """FillSignature: the optional "signature_name" string."""
    signature = _member(doc, "signature_name")
    if signature is _MISSING:
        return
    if type(signature) is not str:
        raise invalid_argument(f"JSON Value: {_debug_string(doc)} not formatted correctly. 'signature_name' key "
                               "must be a string value.")
    request.model_spec.signature_name = signature


# ---------------------------------------------------------------------------------------------------------------
# Classify / Regress requests: JSON objects -> tf.Example
# ---------------------------------------------------------------------------------------------------------------

def _fill_examples_request(body: str | bytes, request: Any) -> None:
    """FillClassifyRegressRequestFromJson."""
    doc = _document(body)
    _fill_signature(doc, request)
    context = _member(doc, "context")
    if context is not _MISSING:
        _fill_example(context, request.input.example_list_with_context.context)
    examples = _member(doc, "examples")
    if examples is _MISSING:
        raise _format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    if type(examples) is not list:
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    target = (request.input.example_list_with_context if context is not _MISSING
              else request.input.example_list).examples
    for value in examples:
        _fill_example(value, target.add())


def _fill_example(value: Any, example: example_pb2.Example) -> None:
    """MakeExampleFromJsonObject: each member is a feature, one value or a list of them."""
    if type(value) is not _JsonObject:
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value:
        example.features.feature[name].CopyFrom(_feature(name, content if type(content) is list else [content]))


_FEATURE_LISTS = {"bytes": "bytes_list", "float": "float_list", "int64": "int64_list"}


def _feature(name: str, values: list) -> feature_pb2.Feature:
    """AddValueToFeature for each value: the feature's kind is set by its first value; the others must match.
    Strings and b64 are bytes, booleans and integers int64, other numbers float."""
    kind, items = None, []
    for value in values:
        if value is None or type(value) is list or (type(value) is _JsonObject and not is_b64(value)):
            raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
        value_kind = ("bytes" if type(value) in (str, _JsonObject) else
                      "float" if type(value) is float else "int64")
        if kind not in (None, value_kind):
            raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")
        kind = value_kind
        if type(value) is int and value > 2**63 - 1:
            raise invalid_argument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        items.append(_decode_b64(value) if type(value) is _JsonObject else
                     _utf8(value) if type(value) is str else int(value) if type(value) is bool else value)
    feature = feature_pb2.Feature()
    if kind is not None:
        getattr(feature, _FEATURE_LISTS[kind]).value.extend(_float32(items) if kind == "float" else items)
    return feature


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
    raw = value if isinstance(value, bytes) else _utf8(value)
    if as_b64:
        return _B64(base64.b64encode(raw).decode("ascii"))
    if isinstance(value, str):
        return _quote(value)
    try:
        return _quote(raw.decode("utf-8"))
    except UnicodeDecodeError:
        if invalid_utf8_as_b64:
            return _B64(base64.b64encode(raw).decode("ascii"))
        return _quote(raw.decode("utf-8", "surrogateescape"))


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


def _write_token(writer: _PrettyWriter, token: str) -> None:
    if type(token) is _B64:
        writer.start_object()
        writer.key("b64")
        writer.string(token)
        writer.end_object()
    else:
        writer.value(token)


def _write_values(writer: _PrettyWriter, column: _Column, dim: int, offset: int) -> int:
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


def _write_rows(writer: _PrettyWriter, columns: dict[str, _Column], batch: int) -> None:
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


def _write_columns(writer: _PrettyWriter, columns: dict[str, _Column]) -> None:
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
