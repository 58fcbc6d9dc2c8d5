"""Request bodies over HTTP as TF Serving's HTTP layer takes them.

What a client switching from TF Serving (http_server.cc,
util/net_http/server/internal/evhttp_request.cc on libevent) would notice in how the
local server reads a request body: gzip-encoded bodies (``Content-Encoding``, several
members, corrupt or truncated data), chunked transfer coding (chunk extensions, bad
framing, other transfer codings: 501), ``max_request_bytes`` held after inflating and
across chunks (413, a gzip bomb included), invalid ``Content-Length``, and JSON quirks end
to end: lone surrogates answered with a 400 (never a dropped connection), repeated keys,
bytes after the document and unpadded base64.
"""

import base64
import gzip
import json

import pytest
from rest_helpers import MAX_BYTES, call, exchange, predict, request

from server_fixtures import expected_text


def chunked(body, sizes, extension=b""):
    out, start = b"", 0
    for size in sizes:
        out += b"%x%s\r\n%s\r\n" % (size, extension, body[start:start + size])
        start += size
    return out + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - start, body[start:])


@pytest.fixture(scope="module")
def server(parity_server):  # session-scoped in conftest.py
    return parity_server


def test_gzip_request_bodies(server):  # evhttp_request.cc: auto_uncompress_input
    body = json.dumps({"instances": ["héllo", "ab"]}).encode()
    for encoding in ("gzip", "x-gzip", "GZIP"):
        code, doc = predict(server, gzip.compress(body), headers=[("Content-Encoding", encoding)])
        assert code == 200 and [r["text"] for r in doc["predictions"]] == ["OLLÉH", "BA"]
    two_members = gzip.compress(body[:10]) + gzip.compress(body[10:])
    assert predict(server, two_members, headers=[("Content-Encoding", "gzip")])[0] == 200
    code, doc = predict(server, b"not gzip", headers=[("Content-Encoding", "gzip")])
    assert code == 400 and "decompress the gzip request body" in doc["error"]
    code, doc = predict(server, gzip.compress(body)[:-9], headers=[("Content-Encoding", "gzip")])
    assert code == 400 and "truncated" in doc["error"]
    code, doc = predict(server, gzip.compress(body), headers=[("Content-Encoding", "br")])
    assert code == 400 and doc["error"].startswith("JSON Parse error")  # passed on as is


def test_gzip_bomb_is_refused_at_the_limit(server):
    bomb = gzip.compress(b'{"instances": ["' + b"a" * (64 << 20) + b'"]}')
    assert len(bomb) < MAX_BYTES  # 64 MiB inflated from ~64 KiB
    code, doc = predict(server, bomb, headers=[("Content-Encoding", "gzip")])
    assert code == 413 and "max_request_bytes" in doc["error"]
    ok = gzip.compress(b'{"instances": ["' + b"a" * (MAX_BYTES - 40) + b'"]}')
    assert predict(server, ok, headers=[("Content-Encoding", "gzip")])[0] == 200


def test_chunked_request_bodies(server):  # libevent reads chunked bodies for TF Serving
    body = json.dumps({"instances": ["ab", "cd"]}).encode()
    te = [("Transfer-Encoding", "chunked")]
    for framed in (chunked(body, [5, 1, 10]), chunked(body, []), chunked(body, [3], b";ext=1")):
        code, doc = predict(server, framed, headers=te)
        assert code == 200 and [r["text"] for r in doc["predictions"]] == ["BA", "DC"]
    code, doc = predict(server, chunked(gzip.compress(body), [7]),
                        headers=te + [("Content-Encoding", "gzip")])
    assert code == 200 and doc["predictions"][1]["text"] == "DC"
    code, doc = predict(server, b"0\r\n\r\n", headers=te)
    assert (code, doc) == (400, {"error": "JSON Parse error: The document is empty"})
    for bad in (b"zz\r\n", b"5\r\nab", b"-1\r\n\r\n", b"5\r\n{\"ins\r\n"):
        code, doc = predict(server, bad, headers=te)
        assert code == 400 and "chunked request body" in doc["error"], bad
    code, doc = predict(server, b"3\r\nabc\r\n0\r\n\r\n", headers=[("Transfer-Encoding", "gzip")])
    assert code == 501 and "Transfer-Encoding" in doc["error"]


def test_chunked_bodies_are_held_to_the_limit(server):
    big = json.dumps({"instances": ["x" * MAX_BYTES]}).encode()
    code, doc = predict(server, chunked(big, [1000] * 30), headers=[("Transfer-Encoding", "chunked")])
    assert code == 413 and "max_request_bytes" in doc["error"]
    # A chunk claiming terabytes is refused from its size line, nothing read after it.
    code, _, data = exchange(server.rest_port, request(
        "POST", "/v1/models/stub:predict", b"%x\r\n" % 10 ** 12, [("Transfer-Encoding", "chunked")]))
    assert code == 413 and "max_request_bytes" in json.loads(data)["error"]


def test_invalid_content_length_is_a_400(server):
    for value in ("abc", "-1", "\xb2", "1 2"):
        data = b"POST /v1/models/stub:predict HTTP/1.1\r\nContent-Length: %s\r\n\r\n{}" % \
            value.encode("latin-1")
        code, _, body = exchange(server.rest_port, data)
        assert code == 400 and "Content-Length" in json.loads(body)["error"], value


def test_lone_surrogates_over_http(server):  # the dropped connection of the issue
    code, doc = predict(server, b'{"instances": "\\ud800"}')
    assert code == 400 and "surrogate pair in string is invalid" in doc["error"]
    code, _, data = call(server, "POST", "/v1/models/stub:predict", b'{"instances": "\\udc00"}')
    assert code == 400 and data.isascii()  # echoed as a \u escape: UTF-8 cannot hold it
    assert "\udc00" in json.loads(data)["error"]
    code, doc = predict(server, b'{"instances": ["a\\udc00"]}')
    assert code == 200 and doc["predictions"][0]["text"] == "\ufffd" * 3 + "A"  # as UTF-8 decodes it
    assert predict(server, {"instances": ["ok"]})[1]["predictions"][0]["text"] == "KO"


def test_duplicates_trailing_bytes_and_unpadded_base64_over_http(server):
    code, doc = predict(server, b'{"instances": ["first"], "instances": ["second"]} and more')
    assert code == 200 and doc["predictions"][0]["text"] == expected_text("first", upper=True)
    code, doc = predict(server, {"instances": [{"b64": base64.b64encode(b"abcd").decode().rstrip("=")}]})
    assert code == 200 and doc["predictions"][0]["text"] == "DCBA"
    code, doc = predict(server, {"instances": ["a", ["b"]]})
    assert code == 400 and doc["error"] == ("Failed to process element: 1 of 'instances' list. "
                                            "Error: INVALID_ARGUMENT: Expecting shape [] but got: [1]")
