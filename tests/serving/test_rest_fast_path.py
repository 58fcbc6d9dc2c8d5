"""The REST server's cheaper paths give the same results as the general ones:

- float32 outputs: ``float_text.shortest_float32`` (vectorized for big arrays) equals
  numpy's ``str`` of every value, the formatting used before (``astype(str)``);
- request headers: ``rest._header_message`` equals ``http.client.parse_headers``
  (the stdlib's email-package parser), malformed blocks included;
- whole exchanges: the server answers raw requests byte for byte (but the Date value)
  like a handler that uses the stdlib's ``parse_request`` and ``send_response``.
"""

import http.client
import io
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from tfseq2seq.serving import rest
from tfseq2seq.serving.app import serve
from tfseq2seq.serving.float_text import shortest_float32
from tfseq2seq.serving.json_tensor import format_outputs

from server_fixtures import build_store


def _same_floats(got, want):
    return np.array_equal(got.view(np.uint64), want.view(np.uint64)) or bool(
        np.all((got == want) & (np.signbit(got) == np.signbit(want))
               | (np.isnan(got) & np.isnan(want))))


def _reference(array):
    return array.astype(str).astype(np.float64)


def test_shortest_float32_equals_numpy_str_on_random_bit_patterns():
    rng = np.random.default_rng(0)
    for _ in range(4):
        bits = rng.integers(0, 2 ** 32, size=100_000, dtype=np.uint64).astype(np.uint32)
        values = bits.view(np.float32)
        values = values[~np.isnan(values)]  # NaN payloads: compared below
        assert _same_floats(shortest_float32(values), _reference(values))


def test_shortest_float32_equals_numpy_str_on_typical_and_edge_values():
    rng = np.random.default_rng(1)
    probs = rng.random((50, 13, 20), dtype=np.float32)
    probs = (probs / probs.sum(-1, keepdims=True)) ** 3  # attention-like, tiny values too
    logits = (rng.standard_normal(20_000) * 30).astype(np.float32)
    special = np.array([2.0 ** e for e in range(-149, 128)] + [10.0 ** e for e in range(-45, 39)]
                       + list(range(-2000, 2000)) + [97474816.0, 16777216.0, 0.1, 0.2, 0.3,
                                                      1e-13, 1e21, 3.4028235e38], np.float32)
    with np.errstate(over="ignore"):
        special = np.concatenate([special, np.nextafter(special, np.float32(np.inf)),
                                  np.nextafter(special, np.float32(-np.inf)), -special,
                                  np.array([np.inf, -np.inf, 0.0, -0.0, np.nan], np.float32)])
    for values in (probs, logits, special, special[:7], probs[0, :2, :3]):
        got = shortest_float32(values)
        assert got.shape == values.shape and got.dtype == np.float64
        assert _same_floats(got.ravel(), _reference(values).ravel())
        assert json.dumps(got.tolist()) == json.dumps(_reference(values).tolist())


def test_format_outputs_writes_float32_as_before():
    rng = np.random.default_rng(2)
    outputs = {"attention": rng.random((3, 9, 11), dtype=np.float32) ** 5,
               "scores": np.array([-0.15000911, -2.0, 0.2], np.float32),
               "text": np.array([b"a", b"bc", b"\xff"], dtype=object)}
    for fmt in ("row", "columnar"):
        doc = json.loads(json.dumps(format_outputs(outputs, fmt)))
        rows = doc["predictions"] if fmt == "row" else None
        attention = ([r["attention"] for r in rows] if rows else doc["outputs"]["attention"])
        assert attention == _reference(outputs["attention"]).tolist()
    assert json.dumps(format_outputs({"scores": outputs["scores"]}, "row")) == \
        '{"predictions": [-0.15000911, -2.0, 0.2]}'


HEADER_BLOCKS = [
    b"\r\n",
    b"",
    b"Host: a\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n",
    b"host: a\nCONTENT-LENGTH:  7 \n\n",
    b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"X-Empty:\r\nX-Tab:\t v\t\r\nX-Colon: a:b: c\r\n\r\n",
    b"X-Latin: caf\xe9 \xff\r\n\r\n",
    b"X-Folded: a\r\n b\r\n\tc\r\nNext: d\r\n\r\n",
    b"No colon here\r\nContent-Length: 3\r\n\r\n",
    b"Content-Length : 3\r\nHost: x\r\n\r\n",
    b": empty name\r\nHost: x\r\n\r\n",
    b"From nobody Mon\r\nHost: x\r\n\r\n",
    b"X-Cr: a\rb\r\nHost: x\r\n\r\n",
    b"X-Crcr: a\r\r\nHost: x\r\n\r\n",
    b" Leading: space\r\nHost: x\r\n\r\n",
    b"Host: x\r\nUnterminated: y",
    b"X-Nul: a\x00b\r\nX-Del\x7f: c\r\n\r\n",
    b"X-Utf8: \xc3\xa9\r\n\xc3\xa9: v\r\n\r\n",
]


@pytest.mark.parametrize("block", HEADER_BLOCKS)
def test_header_message_equals_http_client_parse_headers(block):
    want = http.client.parse_headers(io.BytesIO(block))
    lines = http.client._read_headers(io.BytesIO(block))
    got = rest._header_message(lines, http.client.HTTPMessage)
    assert type(got) is type(want)
    assert got.items() == want.items()
    for name in ("Content-Length", "host", "Connection", "Expect", "X-Folded", "Missing"):
        assert got.get(name) == want.get(name) and got.get_all(name) == want.get_all(name)


class _StdlibHandler(rest._Handler):
    """The handler as it was: the stdlib's request parsing and response writing."""

    parse_request = BaseHTTPRequestHandler.parse_request

    def _send(self, status, data, close=False):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close or self.server.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    store = build_store(tmp_path_factory.mktemp("stub_models"))
    handle = serve(str(store / "base"), "stub", port=None, rest_api_port=None,
                   max_batch_rows=64, poll_seconds=0)
    pair = []
    for handler in (rest._Handler, _StdlibHandler):
        server = rest.RestServer(("127.0.0.1", 0), rest.RestApi(handle.manager, handle.runner),
                                 max_request_bytes=4096)
        server.RequestHandlerClass = handler
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        pair.append(server)
    yield pair
    for server in pair:
        server.stop(grace=1)
    handle.stop(grace=1)


def _exchange(port, data):
    """Send raw bytes, half-close, read everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", b"".join(chunks))


def _post(body, path=b"/v1/models/stub:predict", version=b"HTTP/1.1", extra=b""):
    return (b"POST " + path + b" " + version + b"\r\nHost: x\r\nContent-Type: application/json\r\n"
            + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)


BODIES = [
    b'{"instances": ["hello"]}', b'{"instances": ["a", "bc", "\\u00e9t\\u00e9"]}',
    b'{"inputs": ["x", "y"]}', b'{"inputs": {"text": ["x"]}}', b'{"instances": [{"text": "x"}]}',
    b'{"instances": [{"b64": "aGk="}]}', b'{"signature_name": "beam_search", "instances": ["q"]}',
    b'{"instances": []}', b'{"instances": "x"}', b'{"instances": [1]}', b'{"inputs": 1.5}',
    b'{"instances": ["\\ud800"]}', b'{"instances": [["a"], "b"]}', b'{"instances": ["__raise__"]}',
    b'{"instances": ["a"], "inputs": ["b"]}', b'{}', b'[]', b'', b'{"instances": [', b'nul',
    b'{"signature_name": 3, "instances": ["a"]}', b'{"instances": [{"b64": "!!"}]}',
]
REQUESTS = [_post(body) for body in BODIES] + [
    _post(BODIES[0], version=b"HTTP/1.0"),
    _post(BODIES[0], extra=b"Connection: close\r\n"),
    _post(BODIES[0], version=b"HTTP/1.0", extra=b"Connection: keep-alive\r\n"),
    _post(BODIES[0], extra=b"Expect: 100-continue\r\n"),
    _post(BODIES[0], path=b"//v1/models/stub:predict"),
    _post(BODIES[0], path=b"/v1/models/stub/versions/2:predict"),
    _post(BODIES[0], path=b"/v1/models/stub/labels/x:predict"),
    _post(BODIES[0], path=b"/v1/models/stub:classify"),
    _post(BODIES[0], path=b"/v1/models/other:predict"),
    _post(BODIES[0], path=b"/v2/nothing"),
    _post(b'{"instances": ["' + b"a" * 5000 + b'"]}'),  # 413
    _post(BODIES[0]) + _post(BODIES[2]) + b"GET /v1/models/stub HTTP/1.1\r\n\r\n",  # pipelined
    b"GET /v1/models/stub HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v1/models/stub/metadata HTTP/1.1\r\n\r\n",
    b"GET /v1/models/stub?x=1 HTTP/1.1\r\n\r\n",
    b"GET /v1/models/stub HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v1/models/stub:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /v1/models/stub:predict HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /v1/models/stub:predict HTTP/1.1\r\nNo colon\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v1/models/stub:predict HTTP/1.1\r\nContent-Length: 24\r\n folded\r\n\r\n"
    + BODIES[0],
    b"POST /v1/models/stub:predict HTTP/1.1\r\ncontent-length: 24\r\n\r\n" + BODIES[0],
    b"GET /v1/models/stub HTTP/1.1\r\n" + b"X-A: b\r\n" * 101,  # too many headers
    b"GET /v1/models/stub HTTP/1.1\r\nX-Long: " + b"a" * 65600,  # line too long
    b"GET /v1/models/stub\r\n",  # HTTP/0.9
    b"POST /v1/models/stub:predict\r\n",
    b"GET /v1/models/stub HTTP/2.0\r\n\r\n",
    b"GET /v1/models/stub HTTP/1.x\r\n\r\n",
    b"GET /v1/models/stub HTTP/1.1 extra\r\n\r\n",
    b"GET  /v1/models/stub  HTTP/1.1\r\n\r\n",
    b"GET\t/v1/models/stub\tHTTP/1.1\r\n\r\n",
    b"GET /v1/models/stub\xa0 HTTP/1.1\r\n\r\n",
    b"PUT /v1/models/stub HTTP/1.1\r\n\r\n",
    b"get /v1/models/stub HTTP/1.1\r\n\r\n",
    b"\r\n",
]


@pytest.mark.parametrize("request_bytes", REQUESTS, ids=range(len(REQUESTS)))
def test_responses_equal_the_stdlib_handlers(servers, request_bytes):
    fast, stdlib = (_exchange(s.server_address[1], request_bytes) for s in servers)
    assert fast == stdlib
    assert fast or request_bytes == b"\r\n"
