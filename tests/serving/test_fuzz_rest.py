"""Bad REST requests always get an answer: property-based fuzzing of the server process.

Hypothesis drives the REST paths (mutated JSON documents, random bytes, odd tensors:
dtypes, ranks, empty, huge; gzip and chunked bodies; odd methods and paths) and raw HTTP
garbage against one ``python -m tfseq2seq.serving.app`` process (conftest.py's
``fuzz_server``, shared with test_fuzz_grpc.py).  Every request must get a 2xx, or a 4xx
with a ``{"error": "..."}`` body, or 501 (not implemented: unknown methods,
``:classify``/``:regress``, transfer codings other than chunked); never a closed
connection without an answer nor another 5xx; and the process must be alive and
answering afterwards.  The runs are deterministic (``derandomize``) and bounded: a fixed
number of examples each, and a time budget after which the remaining examples are
skipped.
"""

import gzip
import json
import random

import pytest
from fuzz_helpers import MAX_BYTES, MAX_ROWS, SETTINGS, Budget, _exchange, assert_alive, mutated
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

REST_SECONDS = 30.0
BOMB = gzip.compress(b'{"instances": ["' + b"a" * (8 << 20) + b'"]}')  # 8 MiB from ~8 KiB


@pytest.fixture(scope="module")
def proc(fuzz_server):  # session-scoped in conftest.py: one process for both fuzz files
    return fuzz_server


# ---------------------------------------------------------------- REST strategies
def _escape(text):
    return json.dumps(text)


SURROGATES = st.sampled_from(['"\\ud800"', '"\\udc00"', '"a\\ud83d\\ude00"', '"\\ud800\\u0041"',
                              '"x\\udfff"', '"\\ud83d"'])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True),
    st.text(max_size=12).map(_escape), SURROGATES, SURROGATES,
    st.sampled_from(['"\\u0000"', "1e400", "-0", "NaN", "Infinity", "9" * 400, '{"b64": "aGk"}',
                     '{"b64": "!!"}', '{"b64": 1}', '{"b64": "aGk=", "b64": "x"}', "{}", "[]"]))


def _json_text(value):
    return value if isinstance(value, str) else json.dumps(value)


json_values = st.recursive(
    scalars.map(_json_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(st.sampled_from(["text", "b64", "instances", "x", ""]).map(json.dumps),
                        inner, max_size=3).map(
            lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}")),
    max_leaves=12)


@st.composite
def tensors(draw):
    """Odd "tensors" as JSON text: any rank (up to beyond the limit), empty, huge rows."""
    kind = draw(st.sampled_from(["nested", "deep", "rows", "empty", "value"]))
    if kind == "nested":
        return draw(json_values)
    if kind == "deep":
        depth = draw(st.sampled_from([2, 31, 32, 33, 40, 200]))
        return "[" * depth + draw(st.sampled_from(['"a"', "1", ""])) + "]" * depth
    if kind == "rows":
        rows = draw(st.sampled_from([1, MAX_ROWS, MAX_ROWS + 1, 1000]))
        leaf = draw(st.sampled_from(['"ab"', '["a", "b"]', "1", '{"text": "a"}', '{"b64": "YQ=="}']))
        return "[" + ", ".join([leaf] * rows) + "]"
    if kind == "empty":
        return draw(st.sampled_from(["[]", "[[]]", "[[], []]", '""', "[[[]]]"]))
    return draw(scalars.map(_json_text))


@st.composite
def documents(draw):
    key = draw(st.sampled_from(["instances", "inputs", "both", "other"]))
    parts = []
    if draw(st.booleans()):
        parts.append('"signature_name": ' + draw(st.sampled_from(
            ['"serving_default"', '"beam_search"', '"nope"', "7", '""', "null"])))
    if key in ("instances", "both"):
        parts.append('"instances": ' + draw(tensors()))
    if key in ("inputs", "both"):
        value = draw(tensors())
        parts.append('"inputs": ' + (f'{{"text": {value}}}' if draw(st.booleans()) else value))
    if key == "other" or draw(st.booleans()):
        parts.append(f'"{draw(st.sampled_from(["x", "instances", "b64"]))}": {draw(json_values)}')
    return ("{" + ", ".join(parts) + "}").encode("utf-8", "surrogatepass")


bodies = st.one_of(
    documents(), documents().flatmap(mutated), st.binary(max_size=200),
    st.sampled_from([b"", b" ", b"{}", b"[]", b"null", b'{"instances": ["' + b"x" * (MAX_BYTES + 1) + b'"]}']))


PATHS = ["/v1/models/stub:predict", "/v1/models/stub/versions/1:predict", "/v1/models/stub",
         "/v1/models/stub/metadata", "/v1/models/stub/versions/1", "/v1/models/stub:classify",
         "/v1/models/stub:PREDICT", "/V1/MODELS/stub/METADATA", "/v1/models/stub/labels/x:predict",
         "/v1/models/nope:predict", "/v1/models/stub/versions/99999999999999999999:predict",
         "/v1/models", "/v1/", "/", "/v2/x", "/v1/models/%FF%00:predict", "/v1/models/stub?x=1"]
METHODS = ["POST"] * 6 + ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"]


def _chunk(body, rng):
    out, start = b"", 0
    while start < len(body):
        size = rng.randrange(1, 40)
        out += b"%x\r\n%s\r\n" % (len(body[start:start + size]), body[start:start + size])
        start += size
    return out + b"0\r\n\r\n"


def _post(body, headers=""):
    return "POST", (f"POST /v1/models/stub:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    f"{headers}Content-Length: {len(body)}\r\n\r\n").encode() + body


@st.composite
def rest_requests(draw):
    method, path = draw(st.sampled_from(METHODS)), draw(st.sampled_from(PATHS))
    body, headers = draw(bodies), []
    rng = random.Random(draw(st.integers(0, 2 ** 32)))
    encoding = draw(st.sampled_from(["none", "none", "gzip", "gzip-raw", "bomb"]))
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "bomb":
        body = BOMB
    if encoding != "none":
        headers.append("Content-Encoding: gzip")
    framing = draw(st.sampled_from(["length", "length", "chunked", "none", "bad-te"]))
    if framing == "chunked":
        headers.append("Transfer-Encoding: chunked")
        body = _chunk(body, rng) if draw(st.booleans()) else draw(mutated(_chunk(body, rng)))
    elif framing == "bad-te":
        headers.append("Transfer-Encoding: gzip")
    elif framing == "length" or body:
        headers.append(f"Content-Length: {len(body)}")
    if method == "OPTIONS" or draw(st.booleans()):
        headers.append("Origin: " + draw(st.sampled_from(["http://a.example", "null", ""])))
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + \
        "".join(h + "\r\n" for h in headers) + "\r\n"
    return method, head.encode("latin-1") + body


def check_rest_reply(method, reply):
    assert reply, "connection closed without an answer"
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert 200 <= status < 500 or status == 501, (status, reply[:300])
    if status == 501 or method == "HEAD" or (status < 300 and not body):
        return status
    doc = json.loads(body)
    if status >= 300:
        assert set(doc) == {"error"} and isinstance(doc["error"], str), reply[:300]
    return status


def test_rest_requests_always_get_an_answer(proc):
    budget, seen = Budget(REST_SECONDS), {}

    @settings(max_examples=2000, **SETTINGS)
    @given(rest_requests())
    @example(_post(b'{"instances": "\\ud800"}'))  # the dropped connection
    @example(_post(b'{"instances": "\\udc00"}'))
    @example(_post(BOMB, "Content-Encoding: gzip\r\n"))
    @example(("POST", (b"POST /v1/models/stub:predict HTTP/1.1\r\nConnection: close\r\n"
                       b"Content-Length: \xb2\r\n\r\n")))
    def run(case):
        if budget.spent():
            return
        method, data = case
        status = check_rest_reply(method, _exchange(proc.rest_port, data))
        seen[status] = seen.get(status, 0) + 1

    run()
    assert_alive(proc)
    assert {200, 400, 404, 413, 501} <= set(seen), seen  # the fuzzing reached every kind


def test_raw_http_garbage_leaves_the_server_alive(proc):
    budget = Budget(5.0)

    @settings(max_examples=300, **SETTINGS)
    @given(st.one_of(st.binary(max_size=300),
                     st.builds(lambda junk: b"POST /v1/models/stub:predict HTTP/1.1\r\n" + junk,
                               st.binary(max_size=200))))
    def run(data):
        if budget.spent():
            return
        reply = _exchange(proc.rest_port, data)
        if reply:  # a blank or unfinished request line gets no answer, as with any server
            status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else None
            assert status is None or status != 500, reply[:300]

    run()
    assert_alive(proc)
