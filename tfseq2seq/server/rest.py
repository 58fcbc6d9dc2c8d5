"""TF Serving's REST API (v1) on the standard library's ``ThreadingHTTPServer``.

Routes, JSON request/response formats, ``{"error": message}`` bodies and HTTP
codes follow TF Serving's model_servers/http_rest_api_handler.cc,
http_rest_api_util.cc, http_server.cc and util/json_tensor.cc.  Deviations:
no version labels (``/labels/L`` -> 400), ``:classify``/``:regress`` -> 501,
bodies over ``max_request_bytes`` -> 413, and output strings that are not valid
UTF-8 are written as ``{"b64": ...}`` (TF Serving does that only for outputs
named ``*_bytes``, which we honour too, and writes other strings raw).
"""

import base64
import binascii
import json
import logging
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from tfseq2seq.server import StatusError, invalid_argument
from tfseq2seq.server.grpc_service import model_spec_proto, status_proto
from tfseq2seq.server.models import DEFAULT_SIGNATURE

log = logging.getLogger(__name__)

_PREDICT = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?"
                      r":(classify|regress|predict)", re.I)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?"
                     r"(?:/(metadata))?", re.I)
_MAX_DRAIN = 64 << 20  # read (and drop) at most this much of an oversized body
_JSON_OPTS = dict(always_print_fields_with_no_presence=True, preserving_proto_field_name=True)


def _debug(value):
    return json.dumps(value, ensure_ascii=False)[:256]


def _json_type(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    return {str: "String", dict: "Object", list: "Array", type(None): "Null"}.get(type(value), "Number")


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _scalar(value, dtype):
    """One JSON leaf -> python value of ``dtype`` (json_tensor.cc AddValueToTensor)."""
    if dtype == tf.string:
        if isinstance(value, str):
            try:
                return value.encode("utf-8")
            except UnicodeEncodeError:
                raise invalid_argument("JSON Value: string is not valid Unicode") from None
        if isinstance(value, dict):
            if not _is_b64(value):
                raise invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise invalid_argument("Unable to base64 decode") from None
    elif dtype.is_bool:
        if isinstance(value, bool):
            return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if dtype.is_floating:
            return float(value)
        if isinstance(value, int) and dtype.min <= value <= dtype.max:
            return value
    raise invalid_argument(f"JSON Value: {_debug(value)} Type: {_json_type(value)} "
                           f"is not of expected type: {dtype.name}")


def json_to_array(value, dtype):
    """A dense JSON (nested lists of leaves) -> numpy array, checking ragged/type errors."""
    shape, probe = [], value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat = []

    def fill(val, level):
        if not isinstance(val, list):
            if level != len(shape):
                raise invalid_argument(f"JSON Value: {_debug(val)} found at incorrect level: "
                                       f"{level + 1} in the JSON DOM. Expected at level: {len(shape)}")
            flat.append(_scalar(val, dtype))
        elif level >= len(shape):
            raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
        elif len(val) != shape[level]:
            raise invalid_argument(f"Encountered list at unexpected size: {len(val)} at level: "
                                   f"{level} expected size: {shape[level]}")
        else:
            for item in val:
                fill(item, level + 1)

    fill(value, 0)
    np_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    array = np.empty(len(flat), dtype=np_dtype)
    array[:] = flat
    return array.reshape(shape)


def _from_instances(doc, instances, infos):
    """Row format: "instances" list (json_tensor.cc FillTensorMapFromInstancesList)."""
    if not isinstance(instances, list):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument(f"JSON Value: {_debug(doc)} No values in 'instances' array")
    as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not as_objects and len(infos) > 1:
        raise invalid_argument("instances is a plain list, but expecting list of objects as "
                               "multiple input tensors required as per tensorinfo_map")
    columns = {name: [] for name in infos}
    for i, elem in enumerate(instances):
        is_object = isinstance(elem, dict) and not _is_b64(elem)
        if as_objects != is_object:
            got = "list" if as_objects else "object"
            want = "object" if as_objects else "value/list"
            raise invalid_argument(f"Expecting {want} but got {got} at item {i} of input list")
        if not as_objects:
            columns[next(iter(infos))].append(elem)
            continue
        for name, value in elem.items():
            if name not in infos:
                raise invalid_argument(f"Failed to process element: {i} key: {name} of 'instances' "
                                       f"list. Error: JSON object: does not have named input: {name}")
            columns[name].append(value)
        if set(elem) != set(infos):
            raise invalid_argument(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                   f"{_debug(elem)} keys must be equal to: {','.join(sorted(infos))}")
    return {name: json_to_array(col, infos[name][0]) for name, col in columns.items()}


def _from_inputs(inputs, infos):
    """Columnar format: "inputs" value or object (json_tensor.cc FillTensorMapFromInputsMap)."""
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(infos) > 1:
            raise invalid_argument("inputs is a plain value/list, but expecting an object as "
                                   "multiple input tensors required as per tensorinfo_map")
        name = next(iter(infos))
        return {name: json_to_array(inputs, infos[name][0])}
    arrays = {}
    for name, (dtype, _shape) in infos.items():
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = json_to_array(inputs[name], dtype)
    return arrays


def parse_predict_body(body, servable):
    """-> (signature name, {input: ndarray}, "row" | "columnar")."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise invalid_argument(f"JSON Parse error: {exc}") from None
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Is not object")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise invalid_argument(f"JSON Value: {_debug(doc)} not formatted correctly. "
                               "'signature_name' key must be a string value.")
    signature = signature or DEFAULT_SIGNATURE
    if signature not in servable.signature_defs:
        raise invalid_argument(f'Serving signature name: "{signature}" not found in signature def')
    infos = servable.inputs(signature)
    if not infos:
        raise invalid_argument(f"Failed to get input map for signature: {signature}")
    if "instances" in doc and "inputs" in doc:
        raise invalid_argument(f"JSON Value: {_debug(doc)} Not formatted correctly expecting only "
                               "one of 'inputs' or 'instances' keys to exist ")
    if "instances" in doc:
        return signature, _from_instances(doc, doc["instances"], infos), "row"
    if "inputs" in doc:
        return signature, _from_inputs(doc["inputs"], infos), "columnar"
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _to_json_values(name, array):
    """ndarray -> nested python lists as TF Serving writes them."""
    if array.dtype.kind in "OSU":
        as_b64 = name.endswith("_bytes")

        def convert(item):
            data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            if not as_b64:
                try:
                    return data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(data).decode("ascii")}

        return np.frompyfunc(convert, 1, 1)(array).tolist() if array.ndim else convert(array.item())
    if array.dtype == np.float32:  # shortest float32 repr: 0.2, not 0.20000000298...
        return array.astype(str).astype(np.float64).tolist()
    return array.tolist()


def format_outputs(outputs, fmt):
    names = sorted(outputs)
    if fmt == "columnar":
        values = {n: _to_json_values(n, outputs[n]) for n in names}
        return {"outputs": values if len(names) > 1 else values[names[0]]}
    batch = None
    for name in names:
        if outputs[name].ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        size = outputs[name].shape[0]
        if batch is not None and size != batch:
            raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: "
                                   f"{size} expecting: {batch}")
        batch = size
    values = {n: _to_json_values(n, outputs[n]) for n in names}
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    return {"predictions": [{n: values[n][i] for n in names} for i in range(batch or 0)]}


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
        match = (_PREDICT if method == "POST" else _STATUS).fullmatch(path)
        if match is None:
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
            if match.group(4):
                return self._metadata(name, version)
            return json_format.MessageToDict(status_proto(self.manager, name, version), **_JSON_OPTS)
        if match.group(4).lower() != "predict":
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tfseq2seq-serving/0.1"
    timeout = 60  # idle keep-alive connections are dropped after this

    def setup(self):
        super().setup()
        self.server.track(self, "idle")

    def finish(self):
        self.server.track(self, None)
        super().finish()

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def _serve(self, method):
        self.server.track(self, "busy")
        try:
            path = urlsplit(self.path).path
            body = b""
            if method == "POST" or self.headers.get("Content-Length"):
                body = self._read_body()
                if body is None:
                    return
            if not re.match(r"(?i)/v1/", path):
                status, payload = 404, {"error": f"Not found: {method} {path}"}
            else:
                status, payload = self.server.api.handle(method, path, body)
            self._send(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))
        finally:
            self.server.track(self, "idle")

    def _read_body(self):
        limit = self.server.max_request_bytes
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(411, b'{"error": "a Content-Length header is required"}', close=True)
            return None
        length = int(length)
        if limit is not None and length > limit:
            if length <= _MAX_DRAIN:  # drain so the client can read the reply
                for start in range(0, length, 1 << 16):
                    self.rfile.read(min(1 << 16, length - start))
            message = f"Request body of {length} bytes exceeds max_request_bytes={limit}"
            self._send(413, json.dumps({"error": message}).encode(), close=True)
            return None
        return self.rfile.read(length)

    def _send(self, status, data, close=False):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close or self.server.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)


class RestServer(ThreadingHTTPServer):
    """Thread-per-connection HTTP server with a graceful ``stop``."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog; the stdlib default of 5 drops bursts


    def __init__(self, address, api, max_request_bytes=None):
        self.api = api
        self.max_request_bytes = max_request_bytes
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
