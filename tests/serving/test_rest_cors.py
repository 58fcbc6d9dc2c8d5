"""CORS as TF Serving's REST server does it.

Preflights (``OPTIONS`` with an ``Origin``, answered with or without the flag; a missing
or ``null`` origin is a 400, other paths a 404, as in TF Serving's http_server.cc), the
``Access-Control-Allow-*`` headers added to every ``/v1/`` answer only with
``enable_cors_support`` (http_rest_api_util.cc AddCORSHeaders), and the
``--rest_api_enable_cors_support`` command line flag that turns it on.
"""

import json

import pytest
from rest_helpers import call, exchange, request

from tfseq2seq.serving import app
from tfseq2seq.serving.app import serve


@pytest.fixture(scope="module")
def server(parity_server):  # session-scoped in conftest.py
    return parity_server


def test_cors_preflight(server):  # http_server.cc: OPTIONS
    for origin in ("http://localhost:3000", "https://app.example"):
        code, headers, data = call(server, "OPTIONS", "/v1/models/stub:predict",
                                   headers=[("Origin", origin)])
        assert (code, data) == (200, b"")
        assert "Access-Control-Allow-Origin" not in headers  # only with the flag
    for headers in ([], [("Origin", "null")]):
        code, _, data = call(server, "OPTIONS", "/v1/models/stub:predict", headers=headers)
        assert code == 400 and json.loads(data) == {"error": "Origin header is missing in CORS preflight"}
    assert call(server, "OPTIONS", "/elsewhere", headers=[("Origin", "http://a")])[0] == 404


@pytest.fixture(scope="module")
def cors_server(parity_store):
    handle = serve(str(parity_store / "base"), "stub", port=None, rest_api_port=0, poll_seconds=0,
                   enable_cors_support=True)
    yield handle
    handle.stop(grace=2)


def test_cors_headers_with_the_flag(cors_server):  # http_rest_api_util.cc AddCORSHeaders
    want = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, GET",
            "Access-Control-Allow-Headers": "Content-Type"}
    for method, path, body in [("OPTIONS", "/v1/models/stub:predict", b""),
                               ("POST", "/v1/models/stub:predict", b'{"instances": ["a"]}'),
                               ("POST", "/v1/models/stub:predict", b"{"),
                               ("GET", "/v1/models/stub", b"")]:
        _, headers, _ = exchange(cors_server.rest_port, request(
            method, path, body, [("Origin", "http://localhost:8080")]))
        assert want.items() <= headers.items(), (method, body)


def test_cors_command_line_flag(monkeypatch):
    seen = {}

    class Stop(Exception):
        pass

    def fake_serve(*args, **kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(app, "serve", fake_serve)
    argv = ["--model_name", "m", "--model_base_path", "p", "--log_level", "WARNING"]
    for extra, want in (([], False), (["--rest_api_enable_cors_support"], True)):
        with pytest.raises(Stop):
            app.main(argv + extra)
        assert seen["enable_cors_support"] is want
