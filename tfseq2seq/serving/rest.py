"""TF Serving's REST API (v1) on the standard library's ``ThreadingHTTPServer``.

Routes, ``{"error": message}`` bodies and HTTP codes follow TF Serving's
model_servers/http_rest_api_handler.cc, http_rest_api_util.cc and
http_server.cc; the JSON tensor formats live in :mod:`tfseq2seq.serving.json_tensor`,
request bodies (chunked, gzip, size limits) in :mod:`tfseq2seq.serving.http_body`.
As in TF Serving, paths match case-insensitively but the verbs after ``:`` must be
lower case (``:PREDICT`` is a malformed request, ``/METADATA`` reads as the model
status), any method but GET and POST on a ``/v1/`` path is a malformed request (400),
and OPTIONS is a CORS preflight: 200 with an ``Origin`` header naming an http(s)
origin, else 400; with ``cors=True`` (``--rest_api_enable_cors_support``) every ``/v1/``
response carries TF Serving's three Access-Control-Allow-* headers.
Deviations: no version labels (``/labels/L`` -> 400), ``:classify``/``:regress``
-> 501, bodies over ``max_request_bytes`` -> 413, a POST without Content-Length or
chunked framing -> 411, other paths -> 404 with a JSON body, the query string is ignored.
Request strings (model names, versions) are only compared with the served
model's name and looked up as integers: they never become file paths.
"""

import email.parser
import email.utils
import http.client
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from tfseq2seq.serving.grpc_service import model_spec_proto, status_proto
from tfseq2seq.serving.http_body import BodyError, read_body
from tfseq2seq.serving.json_tensor import format_outputs, parse_predict_body
from tfseq2seq.serving.status import StatusError, invalid_argument

__all__ = ["RestApi", "RestServer", "format_outputs", "parse_predict_body"]

log = logging.getLogger(__name__)

_PREDICT = re.compile(r"/v1/models/([^/:]+)(?:/versions/([0-9]+)|/labels/([^/:]+))?"
                      r":(classify|regress|predict)", re.I)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/([0-9]+)|/labels/([^/:]+))?"
                     r"(?:/(metadata))?", re.I)
_JSON_OPTS = dict(always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
_V1 = re.compile(r"/v1/", re.I)
_VERBS = ("predict", "classify", "regress")  # in this case only, as TF Serving
_ENCODER = json.JSONEncoder(ensure_ascii=False)  # = json.dumps(..., ensure_ascii=False)
_ASCII_ENCODER = json.JSONEncoder()  # \u escapes: for text with lone surrogates
_CORS_HEADERS = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "POST, GET"),
                 ("Access-Control-Allow-Headers", "Content-Type"))
_HTTP_ORIGIN = re.compile(r"https?://")
# The stdlib reads header lines with http.client's limits (line length, count), then
# parses them with the email package (~50 us).  Lines of the plain form ``Name: value``
# (the name as the email parser accepts it, one line each) are stored directly; any
# other header block goes through the email parser as before.
_READ_HEADERS = getattr(http.client, "_read_headers", None)
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_date_cache = (0, "")


class RestApi:
    """Maps (method, path, body) to (HTTP status, JSON-able payload)."""

    def __init__(self, manager, runner):
        self.manager = manager
        self.runner = runner

    def handle(self, method, path, body):
        try:
            return 200, self._dispatch(method, path, body)
        except StatusError as exc:
            return exc.http_status, {"error": exc.message}
        except Exception as exc:  # a bug must not kill the connection thread
            log.exception("REST request failed")
            return 500, {"error": f"Internal: {exc}"}

    def _dispatch(self, method, path, body):
        match = None
        if method in ("GET", "POST"):
            match = (_PREDICT if method == "POST" else _STATUS).fullmatch(path)
        if match is None or (method == "POST" and match.group(4) not in _VERBS):
            raise invalid_argument(f"Malformed request: {method} {path}")
        name, version, label = match.group(1), match.group(2), match.group(3)
        name = unquote(name) if name else name
        if version is not None:
            version = int(version)
            if version >= 1 << 63:
                raise invalid_argument(f"Failed to convert version: {version} to numeric.")
        if label is not None:
            raise invalid_argument("ModelSpec has 'version_label' set, but it is not "
                                   "currently allowed by the server.")
        if not name:
            raise invalid_argument("Missing model name in request.")
        if method == "GET":
            if match.group(4) == "metadata":
                return self._metadata(name, version)
            return json_format.MessageToDict(status_proto(self.manager, name, version), **_JSON_OPTS)
        if match.group(4) != "predict":
            raise StatusError("UNIMPLEMENTED", f"{match.group(4)} is not implemented by this server")
        servable = self.manager.lookup(name, version)
        signature, arrays, fmt = parse_predict_body(body, servable)
        return format_outputs(self.runner(servable, signature, arrays), fmt)

    def _metadata(self, name, version):
        servable = self.manager.lookup(name, version)
        sig_map = get_model_metadata_pb2.SignatureDefMap(signature_def=servable.signature_defs)
        return {"model_spec": json_format.MessageToDict(
                    model_spec_proto(name, servable.version), **_JSON_OPTS),
                "metadata": {"signature_def": json_format.MessageToDict(sig_map, **_JSON_OPTS)}}


def _http_date():
    """``BaseHTTPRequestHandler.date_time_string()``, formatted once per second."""
    global _date_cache
    now = time.time()
    second, text = _date_cache
    if int(now) != second:
        text = email.utils.formatdate(now, usegmt=True)
        _date_cache = (int(now), text)
    return text


def _header_message(lines, message_class):
    """Header lines (the last one the blank line or EOF) -> ``message_class`` as
    ``http.client.parse_headers`` builds it."""
    message = message_class()
    for raw in lines[:-1]:
        line = raw.decode("iso-8859-1")
        name, colon, value = line.partition(":")
        value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else None
        if not colon or value is None or "\r" in value or "\n" in value \
                or not _HEADER_NAME.fullmatch(name):
            return email.parser.Parser(_class=message_class).parsestr(
                b"".join(lines).decode("iso-8859-1"))
        message[name] = value.lstrip(" \t")
    return message


def _encode(payload):
    """JSON bytes of a response; a string with a lone surrogate (which UTF-8 cannot hold)
    is written as \\u escapes instead of failing."""
    try:
        return _ENCODER.encode(payload).encode("utf-8")
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(payload).encode("ascii")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    _extra_headers = ()  # (name, value) pairs every response of this request carries
    server_version = "tfseq2seq-serving/0.1"
    timeout = 60  # idle keep-alive connections are dropped after this
    # Responses are buffered and flushed at the end of ``_send`` (before the connection
    # counts as idle again), so headers and body leave in one send; bodies over the
    # buffer size take a second send, which TCP_NODELAY keeps from waiting for a
    # delayed ACK (~40 ms).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.track(self, "idle")

    def finish(self):
        self.server.track(self, None)
        super().finish()

    def parse_request(self):
        """``BaseHTTPRequestHandler.parse_request`` with a cheaper header parse for the
        usual request line ``METHOD PATH HTTP/1.x``; other request lines go to it."""
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0") or _READ_HEADERS is None:
            return super().parse_request()
        self.requestline = requestline
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] != "HTTP/1.1"
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = _header_message(_READ_HEADERS(self.rfile), self.MessageClass)
        except http.client.LineTooLong as err:
            self.send_error(431, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(431, "Too many headers", str(err))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if (self.headers.get("Expect", "").lower() == "100-continue"
                and self.request_version >= "HTTP/1.1"):
            return self.handle_expect_100()
        return True

    def _by_method(self):
        self._serve(self.command)

    # The methods libevent passes on to TF Serving's handler (http_server.cc): GET and POST
    # are the API, OPTIONS a CORS preflight, the others malformed requests.
    do_GET = do_POST = do_OPTIONS = do_HEAD = do_PUT = do_DELETE = do_PATCH = _by_method

    def _serve(self, method):
        self.server.track(self, "busy")
        try:
            path = urlsplit(self.path).path
            v1 = _V1.match(path) is not None
            self._extra_headers = _CORS_HEADERS if v1 and self.server.cors else ()
            try:
                body = read_body(self.rfile, self.headers, self.server.max_request_bytes, method)
            except BodyError as exc:
                self._send(exc.status, _encode({"error": exc.message}), close=exc.close)
                return
            try:
                status, data = self._answer(method, path, v1, body)
            except Exception as exc:  # a bug must not drop the connection
                log.exception("REST request failed")
                status, data = 500, _encode({"error": f"Internal: {exc}"})
            self._send(status, data)
        finally:
            self.server.track(self, "idle")

    def _answer(self, method, path, v1, body):
        if not v1:
            return 404, _encode({"error": f"Not found: {method} {path}"})
        if method == "OPTIONS":  # CORS preflight, as http_server.cc answers it
            if _HTTP_ORIGIN.search(self.headers.get("Origin", "")):
                return 200, b""
            return 400, _encode({"error": "Origin header is missing in CORS preflight"})
        status, payload = self.server.api.handle(method, path, body)
        return status, _encode(payload)

    def _send(self, status, data, close=False):
        """What ``send_response`` + ``send_header``s + ``end_headers`` + body write, in
        one buffer (the stdlib formats the Date header anew each time)."""
        close = close or self.server.stopping
        if close:
            self.close_connection = True
        if log.isEnabledFor(logging.DEBUG):
            self.log_request(status)
        if self.request_version != "HTTP/0.9":  # HTTP/0.9: no status line, no headers
            reason = self.responses[status][0] if status in self.responses else ""
            extra = "".join(f"{name}: {value}\r\n" for name, value in self._extra_headers)
            head = (f"{self.protocol_version} {status} {reason}\r\n"
                    f"Server: {self.version_string()}\r\nDate: {_http_date()}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                    + extra + ("Connection: close\r\n\r\n" if close else "\r\n"))
            data = head.encode("latin-1") + (b"" if self.command == "HEAD" else data)
        self.wfile.write(data)
        self.wfile.flush()

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)


class RestServer(ThreadingHTTPServer):
    """Thread-per-connection HTTP server with a graceful ``stop``."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog; the stdlib default of 5 drops bursts

    def __init__(self, address, api, max_request_bytes=None, cors=False):
        self.api = api
        self.max_request_bytes = max_request_bytes
        self.cors = cors  # TF Serving's --rest_api_enable_cors_support
        self.stopping = False
        self._connections = {}  # handler -> "idle" | "busy"
        self._cv = threading.Condition()
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        log.debug("connection from %s failed", client_address, exc_info=True)

    def track(self, handler, state):
        with self._cv:
            if state is None:
                self._connections.pop(handler, None)
            else:
                self._connections[handler] = state
            self._cv.notify_all()

    def stop(self, grace=5.0):
        """Stop accepting, let busy requests finish (up to ``grace`` s), drop idle ones."""
        self.stopping = True
        self.shutdown()
        with self._cv:
            self._cv.wait_for(lambda: "busy" not in self._connections.values(), timeout=grace)
            handlers = list(self._connections)
        for handler in handlers:
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
