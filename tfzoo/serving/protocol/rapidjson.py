"""JSON as TF Serving's rapidjson reads and writes it, for the REST API's conversions (`json_tensor`).

Reading: Python's `json` agrees with rapidjson on nearly every document and is fast, so it is tried first;
documents it cannot handle the same way (nesting deeper than Python's recursion limit, numbers rapidjson rejects or
types differently, lone UTF-16 surrogates, anything `json` rejects) go through `_RapidJsonParser`, a port of
rapidjson's state machine that also yields its error texts and offsets. Objects are `JsonObject` (a tuple of
(key, value) pairs) because rapidjson keeps duplicate keys: lookups take the first, loops see all.
Writing: rapidjson's PrettyWriter layout and number formatting, and the debug strings TF Serving quotes in errors.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from tfzoo.serving.protocol.status import ServingError, invalid_argument

DEBUG_STRING_BYTES = 256  # TF Serving truncates JSON quoted in error messages (kMaxJsonDebugStringBytes)


# ---------------------------------------------------------------------------------------------------------------
# JSON documents: values are None, bool, int, float, str, list and JsonObject, as rapidjson types them
# (int: an integer token within int64/uint64; float: any other number, NaN and Infinity included).
# ---------------------------------------------------------------------------------------------------------------

class JsonObject(tuple):
    """A JSON object as its (key, value) pairs, in order and with duplicate keys, as rapidjson keeps them."""


MISSING = object()


def member(obj: JsonObject, key: str) -> Any:
    """The value of the first `key` member (rapidjson's FindMember), or MISSING."""
    for name, value in obj:
        if name == key:
            return value
    return MISSING


def json_type(value: Any) -> str:
    """rapidjson's type name of a value, as TF Serving's messages print it."""
    if value is None:
        return "Null"
    if value is True or value is False:
        return str(value)
    if type(value) is list:
        return "Array"
    if type(value) is JsonObject:
        return "Object"
    return "String" if type(value) is str else "Number"


def utf8(text: str) -> bytes:
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


_DECODER = json.JSONDecoder(object_pairs_hook=JsonObject)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def parse(text: str) -> Any:
    """The root value of a JSON text as rapidjson reads it (kParseIterativeFlag | kParseNanAndInfFlag |
    kParseStopWhenDoneFlag); ServingError with rapidjson's error text and offset when it cannot."""
    start = 1 if text.startswith("\ufeff") else 0  # rapidjson's UTF-8 stream skips a byte order mark
    if _python_json_agrees(text):
        try:
            value, _ = _DECODER.raw_decode(text, _WHITESPACE.match(text, start).end())
        except (ValueError, RecursionError):
            pass
        else:
            if type(value) is JsonObject:  # other roots: rapidjson judges scalars such as "1." itself
                return value
    return _RapidJsonParser(text, start).parse()


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
        total = len(utf8(self._text))
        offset = min(len(utf8(self._text[:pos])) + 1, total)
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
            value = MISSING
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
                value = JsonObject(items) if target == self.OBJECT_FINISH else items
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
            if value is not MISSING:
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


def quote(text: str) -> str:
    return f'"{text.translate(_ESCAPE)}"'


class PrettyWriter:
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
            self._size += len(utf8(text))

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
        self.value(quote(text))

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
    """A member name in debug_string's walk."""


_END = object()


def debug_string(value: Any) -> str:
    """JsonValueToDebugString: `value` in single-line-array pretty form, cut off once 256 bytes are written.

    Walks with its own stack: a value may be nested far deeper than Python's recursion limit.
    """
    writer = PrettyWriter(max_bytes=DEBUG_STRING_BYTES)
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
        elif type(item) is JsonObject:
            writer.start_object()
            stack.append((iter([part for k, v in item for part in (_Key(k), v)]), writer.end_object))
        elif type(item) is float and not math.isfinite(item):
            writer.value("")  # rapidjson's writer fails on NaN/Infinity after writing the separator: stop there
            break
        else:
            writer.value(scalar_token(item))
    return writer.text()


def scalar_token(value: Any) -> str:
    """A scalar JSON value as rapidjson's Writer prints it."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is float:
        return shortest_double(value)
    return quote(value) if isinstance(value, str) else str(value)


def shortest_double(value: float) -> str:
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
