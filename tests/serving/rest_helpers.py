"""Helpers shared by the REST parity tests (tests/serving/test_rest_*.py; test helper).

``parse``/``parse_error`` run ``parse_predict_body`` against a ``FakeServable`` (no model,
no server); ``exchange``/``request``/``call``/``predict`` speak raw HTTP/1.1 to a server
handle's REST port, such as the session-scoped ``parity_server`` of conftest.py, which
refuses bodies over ``MAX_BYTES``.
"""

import json
import socket

import pytest
import tensorflow as tf

from tfseq2seq.serving.json_tensor import parse_predict_body
from tfseq2seq.serving.status import StatusError

MAX_BYTES = 64 << 10


class FakeServable:
    """What parse_predict_body reads of a servable: signature names and input dtypes."""

    def __init__(self, **dtypes):
        self.signature_defs = {"serving_default": None, "predict_images": None}
        self._inputs = {name: (dtype, tf.TensorShape(None)) for name, dtype in dtypes.items()}

    def inputs(self, signature):
        return self._inputs


def parse(body, **dtypes):
    body = body if isinstance(body, bytes) else body.encode()
    return parse_predict_body(body, FakeServable(**(dtypes or {"default": tf.int32})))


def parse_error(body, **dtypes):
    with pytest.raises(StatusError) as err:
        parse(body, **dtypes)
    assert err.value.code == "INVALID_ARGUMENT"
    return err.value.message


def exchange(port, data, timeout=30, head_only=False):
    """Raw request bytes -> (status, {header: value}, body); the connection is half-closed
    after sending, and everything up to the server's close is read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    reply = b"".join(chunks)
    assert reply, "the server closed the connection without answering"
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers.get("Content-Length", len(body)))
    assert head_only or len(body) >= length, reply[:300]
    return int(lines[0].split()[1]), headers, body[:length]


def request(method, path, body=b"", headers=()):
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
    if (body or method == "POST") and not any(name.lower() == "transfer-encoding"
                                              for name, _ in headers):
        extra += f"Content-Length: {len(body)}\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode("latin-1") + body


def call(server, method, path, body=b"", headers=()):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    return exchange(server.rest_port, request(method, path, body, headers), head_only=method == "HEAD")


def predict(server, body, path="/v1/models/stub:predict", headers=()):
    code, _, data = call(server, "POST", path, body, headers)
    return code, json.loads(data) if data else None
