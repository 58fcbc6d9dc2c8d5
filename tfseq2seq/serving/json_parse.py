"""The JSON document of a REST request, read the way TF Serving reads it.

TF Serving (util/json_tensor.cc ``ParseJson``) parses with rapidjson 1.1.0 and the flags
iterative | NaN-and-Infinity | stop-when-done.  What that means, and what
``parse_document`` does on top of Python's ``json``:

- the document ends where its root value ends: whatever follows is ignored;
- of a key repeated in one object, the first value counts (rapidjson's ``FindMember``);
- a ``\\u`` escape of a high surrogate that is not followed by the escape of a low one is
  a parse error; a lone low surrogate is kept (rapidjson writes it as 3 bytes, which
  ``json_tensor`` reproduces with the ``surrogatepass`` error handler);
- errors read ``JSON Parse error: <rapidjson's text> at offset: <byte offset>``;
- ``{"b64": ...}`` strings decode as absl::Base64Unescape does (``b64_decode``).

Deviations: nesting deeper than Python's recursion limit is a parse error (rapidjson's
iterative parser has no depth limit), and the body must be UTF-8 (rapidjson passes
invalid bytes through into strings).
"""

import base64
import json
import re

from tfseq2seq.serving.status import invalid_argument


def _first_wins(pairs):
    doc = dict(pairs)
    if len(doc) != len(pairs):  # a repeated key: keep its first value, as FindMember
        doc = {}
        for key, value in pairs:
            doc.setdefault(key, value)
    return doc


_DECODER = json.JSONDecoder(object_pairs_hook=_first_wins)
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace (str.strip would take more)
_HIGH = re.compile(r"\\u[dD][89abAB]")
# Escapes from left to right (so an escaped backslash is never read as the start of one):
# 2 characters, or 6 for a high surrogate's alone, or 12 with the low one after it.
_ESCAPE = re.compile(r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|.)", re.DOTALL)
_B64_SPACE = str.maketrans("", "", " \t\n\v\f\r")
_B64_DATA = re.compile(r"[A-Za-z0-9+/]*")
_CONTAINER = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
# Python's message -> rapidjson's (error/en.h), for the errors both parsers detect.
_MESSAGES = {
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid control character at": "Invalid escape character in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}


def _offset(text, pos):
    return len(text[:pos].encode("utf-8", "surrogatepass"))


def _innermost(text, pos):
    """'{' or '[': the container still open at ``pos`` (strings skipped)."""
    stack = []
    for match in _CONTAINER.finditer(text, 0, pos):
        token = match.group()
        if token in "[{":
            stack.append(token)
        elif token in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else "["


def _error(exc, text):
    message, pos = exc.msg, exc.pos
    if message == "Expecting value":
        message = "The document is empty." if not text.strip(" \t\n\r") else "Invalid value."
    elif message == "Expecting ',' delimiter":
        message = ("Missing a comma or '}' after an object member." if _innermost(text, pos) == "{"
                   else "Missing a comma or ']' after an array element.")
    elif message == "Unterminated string starting at":
        message, pos = _MESSAGES[message], len(text)
    else:
        message = _MESSAGES.get(message, message)
    return invalid_argument(f"JSON Parse error: {message} at offset: {_offset(text, pos)}")


def _check_surrogates(text, start, end):
    for match in _ESCAPE.finditer(text, start, end):
        if len(match.group()) == 6:  # a high surrogate's escape without a low one after it
            raise invalid_argument("JSON Parse error: The surrogate pair in string is invalid. "
                                   f"at offset: {_offset(text, match.start())}")


def parse_document(body):
    """bytes -> the parsed JSON value (any type; the caller checks it is an object)."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    except UnicodeDecodeError as exc:
        raise invalid_argument(f"JSON Parse error: Invalid encoding (not UTF-8) at offset: "
                               f"{exc.start}") from None
    start = _SPACE.match(text).end()
    try:
        doc, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise _error(exc, text) from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than int() converts
        if "integer string conversion" in str(exc):
            raise invalid_argument("JSON Parse error: Number too big to be stored in double.") \
                from None
        raise invalid_argument(f"JSON Parse error: {exc}") from None
    if _HIGH.search(text, start, end):
        _check_surrogates(text, start, end)
    return doc


def b64_decode(text):
    """absl::Base64Unescape: ASCII whitespace is skipped, the padding ('=' or '.') is
    either absent or complete; None if ``text`` is not base64."""
    text = text.translate(_B64_SPACE)
    data = text.rstrip("=.")
    padding, tail = len(text) - len(data), len(data) % 4
    if tail == 1 or not _B64_DATA.fullmatch(data) or padding not in (0, (4 - tail) % 4):
        return None
    return base64.b64decode(data + "=" * ((4 - tail) % 4))
