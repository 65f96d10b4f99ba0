"""TF Serving's REST JSON without TensorFlow: reading a body, and writing numpy arrays as TF Serving lays them out.

The server (`json_tensor`, which adds the protos) and the client (`tfzoo.serving.client`, `tfzoo predict`) share
this module, so that what one writes the other reads back identically. Reading is orjson where it reads the body
(well-formed UTF-8 JSON, five times faster), else Python's `json`, with TF Serving's error texts and numbers typed
as its rapidjson types them (an integer token is an int, any other number a float, NaN and Infinity included).
Writing is by hand: TF Serving's answers are laid out by rapidjson's PrettyWriter and print floats with its
WriteDecimal, which `json.dumps` does neither of, and clients and TF Serving's tests see it.
"""
from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import orjson

from tfzoo.serving.protocol.status import invalid_argument

_DEBUG_STRING_LENGTH = 256  # TF Serving cuts the JSON it quotes in errors at 256 bytes (kMaxJsonDebugStringBytes)


class RequestFormat(enum.Enum):
    """How a Predict request lists its tensors, and so how the response lists them."""

    ROW = "row"             # {"instances": [...]}  -> {"predictions": [...]}
    COLUMNAR = "columnar"   # {"inputs": ...}       -> {"outputs": ...}


# Reading

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# orjson reads an integer outside int64/uint64 as a float, where json keeps it an int (as this module's callers
# expect): a body with a run of 19 digits goes to json. Found by mapping every digit to "9" and searching for 19 of
# them, which costs a twentieth of a regular expression's search.
_DIGITS_AS_NINES = bytes.maketrans(b"012345678", b"999999999")
_LONG_NUMBER = b"9" * 19


def parse(body: str | bytes) -> Any:
    """The JSON value `body` starts with (after a UTF-8 byte order mark; what follows the value is ignored, as TF
    Serving's kParseStopWhenDoneFlag does). INVALID_ARGUMENT "JSON Parse error: ..." when there is none. TF Serving
    takes a string's bytes as they are: bytes that are not UTF-8 are kept, as lone surrogates (`utf8` gives them
    back)."""
    if not isinstance(body, str) and _LONG_NUMBER not in bytes(body).translate(_DIGITS_AS_NINES):
        try:  # a well-formed UTF-8 document, in a fifth of json's time
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity, a BOM, text after the value, non-UTF-8 strings, or an error: json reads it below
    text = body if isinstance(body, str) else bytes(body).decode("utf-8", "surrogateescape")
    start = _WHITESPACE.match(text, 1 if text.startswith("\ufeff") else 0).end()
    if start == len(text):
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        try:
            return _DECODER.raw_decode(text, start)[0]
        except RecursionError:
            return _parse_deep(text, start)
    except json.JSONDecodeError as error:
        # rapidjson's words where TF Serving's REST handler test checks them, else json's ("... starting at" reads on)
        message = "Invalid value." if error.msg == "Expecting value" else error.msg.removesuffix(" at")
        raise invalid_argument(f"JSON Parse error: {message} at offset: {error.pos}") from None
    except ValueError as error:  # an integer of more digits than int() reads
        raise invalid_argument(f"JSON Parse error: {error}") from None


def _parse_deep(text: str, pos: int) -> Any:
    """`parse` for a document nested deeper than `json` recurses: brackets, commas and colons are read here, with
    a stack of the open arrays and objects; keys and scalars still by `json`, so values are typed alike.

    Why by hand: TF Serving's rapidjson parses iteratively, so a body nested 500000 deep is still a request it
    answers (json_tensor_test.cc DeeplyNestedWellFormed), where `json` raises RecursionError.
    """
    stack: list[list | dict] = []  # the open arrays and objects, innermost last
    keys: list[str] = []           # the key of the member each open object is reading
    while True:
        pos = _WHITESPACE.match(text, pos).end()
        char = text[pos:pos + 1]
        if char == "[" or char == "{":
            pos = _WHITESPACE.match(text, pos + 1).end()
            if text.startswith("]" if char == "[" else "}", pos):
                value, pos = ([] if char == "[" else {}), pos + 1
            else:
                stack.append([] if char == "[" else {})
                if char == "{":
                    pos = _read_key(text, pos, keys)
                continue
        else:
            value, pos = _DECODER.raw_decode(text, pos)  # a scalar: no recursion
        while stack:  # `value` is complete: add it to its container; close those that end here
            container = stack[-1]
            if type(container) is list:
                container.append(value)
            else:
                container[keys.pop()] = value
            pos = _WHITESPACE.match(text, pos).end()
            if text.startswith(",", pos):
                pos = pos + 1 if type(container) is list else _read_key(text, pos + 1, keys)
                break
            if not text.startswith("]" if type(container) is list else "}", pos):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            value, pos = stack.pop(), pos + 1
        else:
            return value


def _read_key(text: str, pos: int, keys: list[str]) -> int:
    """Reads an object member's `"key":` at `pos` into `keys`; returns the position after the colon."""
    pos = _WHITESPACE.match(text, pos).end()
    if not text.startswith('"', pos):
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
    key, pos = json.decoder.scanstring(text, pos + 1)
    pos = _WHITESPACE.match(text, pos).end()
    if not text.startswith(":", pos):
        raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
    keys.append(key)
    return pos + 1


def arrays_from_json_outputs(body: str | bytes, dtypes: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    """The "outputs" of a columnar REST predict answer as arrays of the signature's output `dtypes` (object for
    strings, held as bytes; {"b64": ...} decoded). {"error": message} raises ServingError(INVALID_ARGUMENT)."""
    doc = parse(body)
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
    if unknown := set(outputs) - set(dtypes):
        raise invalid_argument(f"unknown output(s) {', '.join(sorted(unknown))}")
    return {name: _array(name, value, dtypes[name]) for name, value in outputs.items()}


def _array(name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    if dtype != object:
        try:
            return np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as error:
            raise invalid_argument(f"output {name!r} is not a dense {dtype} tensor: {error}") from None

    def string(item: Any) -> bytes:
        if isinstance(item, str):
            return utf8(item)
        if not is_b64(item):
            raise invalid_argument(f"output {name!r} holds {type(item).__name__} where strings were expected")
        decoded = b64_bytes(item["b64"])
        if decoded is None:
            raise invalid_argument(f"output {name!r} holds invalid base64")
        return decoded

    array = np.array(value, dtype=object)
    return np.vectorize(string, otypes=[object])(array) if array.size else array


def is_b64(value: Any) -> bool:
    """Whether a JSON value is binary data, {"b64": "<base64>"}: one key, "b64", holding a string."""
    return isinstance(value, dict) and len(value) == 1 and type(value.get("b64")) is str


_BASE64 = re.compile(r"([A-Za-z0-9+/ \t\n\v\f\r]*)([=.][=. \t\n\v\f\r]*)?")
_ASCII_SPACE = re.compile(r"[ \t\n\v\f\r]")


def b64_bytes(text: str) -> bytes | None:
    """absl::Base64Unescape, as TF Serving decodes {"b64": ...}: standard alphabet, whitespace skipped, padding
    ('=' or '.') optional but, when present, complete; None when `text` is not base64."""
    match = _BASE64.fullmatch(text)
    if not match:
        return None
    data = _ASCII_SPACE.sub("", match.group(1))
    padding = sum(c in "=." for c in match.group(2) or "")
    if len(data) % 4 == 1 or padding not in (0, (0, None, 2, 1)[len(data) % 4]):
        return None
    return binascii.a2b_base64(data + "=" * (-len(data) % 4))


def utf8(text: str) -> bytes:
    """A JSON string's bytes: raw request bytes that were not UTF-8 come back unchanged (surrogateescape)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a \uD800-style escape of a lone surrogate
        return text.encode("utf-8", "surrogatepass")


# Writing: documents are dicts, lists and scalar tokens (JSON text), laid out by `pretty`

# rapidjson escapes '"', '\' and control characters (\b \t \n \f \r, else \u00XX); everything else is raw.
_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)} | {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r",
                                                       ord('"'): '\\"', ord("\\"): "\\\\"}


def quote(text: str) -> str:
    """`text` as a JSON string token, escaped as rapidjson escapes it."""
    return f'"{text.translate(_ESCAPES)}"'


class Rows(list):
    """A list written as TF Serving writes its rows ("predictions", a classification's "results"): each row on one
    line, and the closing bracket on a line of its own."""


class _B64(dict):
    """A {"b64": ...} value: in `Rows`, unlike a row of named values (a plain dict), it goes on with the line."""


_CONTAINERS = frozenset((dict, _B64, list, Rows))


def pretty(doc: Any, single_line_arrays: bool = False) -> str:
    """`doc` laid out as rapidjson's PrettyWriter does: members on lines of their own, 4-space indents; arrays
    likewise, or with `single_line_arrays` (kFormatSingleLineArray) as "[1, 2]"."""
    return "".join(_pieces(doc, 0, single_line_arrays, None))


def debug_string(value: Any) -> str:
    """JsonValueToDebugString: a parsed JSON value as TF Serving quotes it in errors, cut off after 256 characters.
    Written lazily: a value nested deeper than the recursion limit is walked no further than the cut."""
    text = ""
    for piece in _pieces(value, 0, True, _debug_token):
        text += piece
        if len(text) >= _DEBUG_STRING_LENGTH:
            break
    return text[:_DEBUG_STRING_LENGTH]


def _debug_token(value: Any) -> str:
    return quote(value) if type(value) is str else json.dumps(value)  # json writes NaN and Infinity as such


def _pieces(value: Any, level: int, single: bool, token: Callable[[Any], str] | None) -> Iterator[str]:
    """The text of `value`, nested `level` deep, in pieces; `token` writes a scalar (None: scalars are tokens)."""
    indent = "\n" + "    " * (level + 1)
    if isinstance(value, dict):
        separator = "{" + indent
        for key, item in value.items():
            yield separator + quote(key) + ": "
            yield from _pieces(item, level + 1, single, token)
            separator = "," + indent
        yield indent[:-4] + "}" if value else "{}"
    elif type(value) is Rows:
        for index, item in enumerate(value):
            # TF Serving turns single-line arrays on for a row's values only after starting an object of named ones
            named = type(item) is dict
            yield ("[" if index == 0 else "," if named else ", ") + (indent if named else "")
            yield from _pieces(item, level + 1, True, token)
        yield indent[:-4] + "]" if value else "[]"
    elif type(value) is not list:
        yield value if token is None else token(value)
    elif not value:
        yield "[]"
    else:
        start, separator, end = ("[", ", ", "]") if single else ("[" + indent, "," + indent, indent[:-4] + "]")
        if _CONTAINERS.isdisjoint(map(type, value)):  # a list of scalars: one piece
            yield start + separator.join(value if token is None else map(token, value)) + end
        else:
            for index, item in enumerate(value):
                yield separator if index else start
                yield from _pieces(item, level + 1, single, token)
            yield end


def decimal_tokens(values: np.ndarray) -> list[str]:
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


def json_from_request_tensors(tensors: Mapping[str, np.ndarray], format: RequestFormat,
                              signature_name: str = "") -> str:
    """A REST predict body for `tensors`: {"signature_name"?, "instances": [...]} or {"inputs": ...}.

    Written with the rules `json_tensor.fill_predict_request` reads: one tensor is written unnamed, several as
    named objects; strings go as JSON strings, or as {"b64": ...} when they are not UTF-8 or their name ends in
    "_bytes"; floats as TF Serving writes them, in digits that read back to the same value.
    """
    doc = {"signature_name": quote(signature_name)} if signature_name else {}
    doc["instances" if format is RequestFormat.ROW else "inputs"] = _tensors_doc(tensors, format, True)
    return pretty(doc, single_line_arrays=True)


def json_from_output_arrays(arrays: Mapping[str, np.ndarray],
                            format: RequestFormat = RequestFormat.COLUMNAR) -> str:
    """MakeJsonFromTensors for numpy arrays: {"predictions": [...]} (ROW) or {"outputs": ...} (COLUMNAR), as TF
    Serving writes a predict answer. Strings named "*_bytes" are {"b64": ...}; other strings are written as their
    bytes, UTF-8 or not (kept as lone surrogates: encode the text with "surrogateescape" to send those bytes)."""
    doc = _tensors_doc(arrays, format, False)
    return pretty({"predictions": Rows(doc)} if format is RequestFormat.ROW else {"outputs": doc})


def _tensors_doc(arrays: Mapping[str, np.ndarray], format: RequestFormat, invalid_utf8_as_b64: bool) -> Any:
    """The "instances"/"predictions" (a list of rows) or "inputs"/"outputs": one tensor alone, several by name."""
    if not arrays:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    if not isinstance(format, RequestFormat):
        raise invalid_argument("Invalid request format")
    names = sorted(arrays)  # TF Serving walks a hash map: any fixed order is as faithful
    arrays = {name: np.asarray(arrays[name]) for name in names}
    if format is RequestFormat.ROW:
        batch = -1  # the row format's shared first dimension (MakeRowFormatJsonFromTensors' checks)
        for name, array in arrays.items():
            if not array.shape:
                raise invalid_argument(f"Tensor name: {name} has no shape information ")
            if batch >= 0 and array.shape[0] != batch:
                raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                                       f"expecting: {batch}")
            batch = array.shape[0]
    values = {name: _tensor_doc(name, array, invalid_utf8_as_b64) for name, array in arrays.items()}
    if len(names) == 1:
        return values[names[0]]
    if format is RequestFormat.COLUMNAR:
        return values
    return [{name: values[name][row] for name in names} for row in range(batch)]


def _tensor_doc(name: str, array: np.ndarray, invalid_utf8_as_b64: bool) -> Any:
    """AddTensorValues: the tensor's values as tokens in nested lists of its shape (a scalar: one token)."""
    flat, kind = array.reshape(-1), array.dtype.kind
    if kind not in "fiubOSU" or kind == "f" and array.dtype.itemsize > 8:
        raise invalid_argument(f"Tensor name: {name} of dtype {array.dtype} cannot be written as JSON")
    if kind == "f":
        tokens: list = decimal_tokens(flat)
    elif kind in "iu":
        tokens = list(map(str, flat.tolist()))
    elif kind == "b":
        tokens = ["true" if v else "false" for v in flat.tolist()]
    else:
        as_b64 = name.endswith("_bytes")  # json_tensor.cc writes the strings of tensors named so as {"b64": ...}
        tokens = [_string_token(v, as_b64, invalid_utf8_as_b64) for v in flat.tolist()]
    return np.array(tokens, dtype=object).reshape(array.shape).tolist()


def _string_token(value: bytes | str, as_b64: bool, invalid_utf8_as_b64: bool) -> str | _B64:
    """A string value as a quoted JSON string, or as {"b64": ...}. TF Serving writes a string's bytes as they are,
    UTF-8 or not; a client must not (its JSON would not be UTF-8), so it sends such bytes as b64."""
    if not isinstance(value, (bytes, str)):
        raise invalid_argument(f"Cannot write {type(value).__name__} value as a JSON string")
    raw = value if isinstance(value, bytes) else utf8(value)
    if not as_b64:
        try:
            return quote(value if isinstance(value, str) else raw.decode("utf-8"))
        except UnicodeDecodeError:
            if not invalid_utf8_as_b64:
                return quote(raw.decode("utf-8", "surrogateescape"))
    return _B64(b64=quote(base64.b64encode(raw).decode("ascii")))
