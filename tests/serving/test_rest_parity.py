"""The local server against TF Serving's own test cases and HTTP-layer behaviour.

The cases of TF Serving's tensorflow_serving/util/json_tensor_test.cc (request and
response JSON) and model_servers/http_rest_api_handler_test.cc (routes, errors, status and
metadata) are restated here for the local server: the facts and expected outcomes carry
over, the stub model (input ``text``, DT_STRING) standing in for TF Serving's test models
where a request has to run.  Then the behaviours of TF Serving's HTTP layer
(http_server.cc, util/net_http/server/internal/evhttp_request.cc on libevent) that a
client switching servers would notice: gzip and chunked bodies, methods other than GET
and POST, CORS, case in paths, base64 without padding, repeated keys, bytes after the
document, lone surrogates.
"""

import base64
import gzip
import json
import socket

import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq.serving import app, status
from tfseq2seq.serving.app import serve
from tfseq2seq.serving.json_tensor import format_outputs, parse_predict_body
from tfseq2seq.serving.status import StatusError

from server_fixtures import build_store, expected_text

MAX_BYTES = 64 << 10


# ---------------------------------------------------------------- helpers
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


def chunked(body, sizes, extension=b""):
    out, start = b"", 0
    for size in sizes:
        out += b"%x%s\r\n%s\r\n" % (size, extension, body[start:start + size])
        start += size
    return out + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - start, body[start:])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("parity_models"))


@pytest.fixture(scope="module")
def server(store):
    handle = serve(str(store / "base"), "stub", port=0, rest_api_port=0, poll_seconds=0,
                   max_request_bytes=MAX_BYTES, max_batch_rows=64)
    yield handle
    handle.stop(grace=2)


def call(server, method, path, body=b"", headers=()):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    return exchange(server.rest_port, request(method, path, body, headers), head_only=method == "HEAD")


def predict(server, body, path="/v1/models/stub:predict", headers=()):
    code, _, data = call(server, "POST", path, body, headers)
    return code, json.loads(data) if data else None


# ---------------------------------------------------------------- json_tensor_test.cc: requests
def test_row_format_int_matrix_and_signature_name():  # SingleUnnamedTensor(WithSignature)
    signature, arrays, fmt = parse('{"instances": [[1,2],[3,4],[5,6]]}')
    assert (signature, fmt) == ("serving_default", "row")
    assert arrays["default"].dtype == np.int32 and arrays["default"].tolist() == [[1, 2], [3, 4], [5, 6]]
    signature, arrays, _ = parse('{"signature_name": "predict_images", "instances": [[1,2]]}')
    assert signature == "predict_images" and arrays["default"].shape == (1, 2)


def test_mixed_ints_and_decimals_for_float_and_double():  # MixedInputFor{Float,Double}Tensor
    _, arrays, _ = parse('{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}', x=tf.float32)
    assert arrays["x"].dtype == np.float32
    assert arrays["x"].tolist() == np.array([1, 2, 3, 4, 5.003, 0.007, 0], np.float32).tolist()
    _, arrays, _ = parse('{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}', x=tf.float64)
    assert arrays["x"].dtype == np.float64 and arrays["x"].tolist() == [1, 2, 3, 4, 0.662, 0, 0]


def test_float_precision_loss_overflow_and_underflow():  # FloatTensor{WithPrecisionLoss,...}
    a = parse('{"instances": [1435774380]}', x=tf.float32)[1]["x"]
    b = parse('{"instances": [1435774380.0]}', x=tf.float32)[1]["x"]
    assert a.tolist() == b.tolist() == [np.float32(1435774380).item()]
    big, tiny = float(np.finfo(np.float64).max), float(np.finfo(np.float64).tiny)
    values = parse(f'{{"instances": [{big!r}, {-big!r}, {tiny!r}, {-tiny!r}]}}', x=tf.float32)[1]["x"]
    assert values[0] == np.inf and values[1] == -np.inf
    assert values[2] == 0 and values[3] == 0 and np.signbit(values[3])


def test_numbers_too_big_for_a_double():  # rapidjson: "Number too big to be stored in double."
    for digits in (400, 5000):
        message = parse_error('{"instances": [' + "9" * digits + "]}", x=tf.float32)
        assert "Number too big to be stored in double." in message, digits


def test_bytes_after_the_document_are_ignored():  # TensorFromNonNullTerminatedBuffer
    _, arrays, _ = parse('{"instances": [[1,2],[3,4],[5,6]]}X')
    assert arrays["default"].shape == (3, 2)
    for tail in ("}", " trailing words", "\n{\"instances\": [[9]]}", "\x00"):
        assert parse('{"instances": [[7]]}' + tail)[1]["default"].tolist() == [[7]]


def test_base64_scalars_lists_and_named():  # SingleUnnamedTensorBase64*, SingleNamedTensorBase64
    hello, world = '{"b64": "aGVsbG8="}', '{ "b64": "d29ybGQ=" }'
    cases = {f'{{"instances": [{hello}, {world}]}}': (2,),
             f'{{"instances": [[{hello}], [{world}]]}}': (2, 1),
             f'{{"instances": [{{"default": [[{hello}], [{world}]]}}]}}': (1, 2, 1)}
    for body, shape in cases.items():
        array = parse(body, default=tf.string)[1]["default"]
        assert array.shape == shape and array.ravel().tolist() == [b"hello", b"world"]


def test_base64_without_padding_or_with_whitespace_is_accepted():  # absl::Base64Unescape
    for text, want in [("aGk", b"hi"), ("aGk=", b"hi"), ("aA", b"h"), ("aA==", b"h"),
                       ("aGVs bG8\n", b"hello"), ("aGk.", b"hi"), ("", b"")]:
        body = json.dumps({"instances": [{"b64": text}]})
        assert parse(body, t=tf.string)[1]["t"].tolist() == [want], text
    for text in ["aGk==", "aA=", "a", "aGk=x", "a=Gk", "aGk!", "aGVsbG8=aGk="]:
        body = json.dumps({"instances": [{"b64": text}]})
        assert parse_error(body, t=tf.string).endswith("Error: INVALID_ARGUMENT: Unable to base64 "
                                                      "decode"), text


def test_multiple_named_tensors_with_nan_and_infinity():  # MultipleNamedTensor
    body = '''{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"],
         "float_tensor": [1.0, NaN], "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"],
         "float_tensor": [2.0, Infinity], "dbl_tensor": [2.0]}]}'''
    _, arrays, fmt = parse(body, int_tensor=tf.int32, str_tensor=tf.string,
                           float_tensor=tf.float32, dbl_tensor=tf.float64)
    assert fmt == "row" and arrays["int_tensor"].shape == (2, 3, 2)
    assert arrays["str_tensor"].tolist() == [[b"foo", b"bar"], [b"baz", b"bat"]]
    floats = arrays["float_tensor"]
    assert floats.shape == (2, 2) and np.isnan(floats[0, 1]) and floats[1, 1] == np.inf
    assert arrays["dbl_tensor"].shape == (2, 1) and np.isnan(arrays["dbl_tensor"][0, 0])


def test_columnar_format():  # SingleUnnamedTensorColumnarFormat, MultipleNamed...
    for body in ('{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}', '{"inputs": [[[1,2],[3,4],[5,6]]]}'):
        _, arrays, fmt = parse(body, int_tensor=tf.int32)
        assert fmt == "columnar" and arrays["int_tensor"].shape == (1, 3, 2)
    body = '''{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"],
                          "bin_tensor": {"b64": "aGVsbG8="}, "ignored": 1}}'''
    _, arrays, _ = parse(body, int_tensor=tf.int32, str_tensor=tf.string, bin_tensor=tf.string)
    assert arrays["str_tensor"].tolist() == [b"foo", b"bar"]
    assert arrays["bin_tensor"].shape == () and arrays["bin_tensor"].item() == b"hello"


def test_single_input_errors():  # SingleUnnamedTensorErrors
    assert "document is empty" in parse_error("")
    assert "must be a string value" in parse_error(
        '{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}')
    assert "Not formatted correctly" in parse_error(
        '{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}')
    assert parse_error('{"instances": [[1,2],[3,4],[5,6,7]]}') == (
        "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting tensor size: 2 but got: 3")
    assert parse_error('{"instances": [[1,2],[3,4],[[5,6]]]}') == (
        "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting shape [2] but got: [1,2]")
    assert parse_error('{"instances": [1, [1]]}') == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting shape [] but got: [1]")
    assert parse_error('{"instances": [[1,2],["a", "b"]]}') == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "a" Type: String is not of expected type: int32')
    # Within one element the dense checks apply, wrapped the same way.
    assert parse_error('{"instances": [[[1,2],[3]]]}') == (
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2")


def test_multiple_input_errors():  # MultipleNamedTensorErrors
    dtypes = dict(int_tensor=tf.int32, str_tensor=tf.string)
    first = '{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}'
    message = parse_error(f'{{"instances": [{first}, {{"int_tensor": [[[7,8],[9,0],[1,2]]], '
                          '"str_tensor": ["baz", "bat"]}]}', **dtypes)
    assert message == ("Failed to process element: 1 key: int_tensor of 'instances' list. Error: "
                       "INVALID_ARGUMENT: Expecting shape [3,2] but got: [1,3,2]")
    message = parse_error('{"instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": '
                          f'["foo", "bar"]}}, {first}]}}', **dtypes)
    assert message.endswith("INVALID_ARGUMENT: Expecting tensor size: 8 but got: 6")
    message = parse_error(f'{{"instances": [{first}, [1, 20, 30], {first}]}}', **dtypes)
    assert message == "Expecting object but got list at item 1 of input list"
    message = parse_error('{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}',
                          str_tensor=tf.string)
    assert message == "Expecting value/list but got object at item 1 of input list"
    message = parse_error('{"instances": [{"nope": 1}]}', **dtypes)
    assert message == ("Failed to process element: 0 key: nope of 'instances' list. Error: "
                       "INVALID_ARGUMENT: JSON object: does not have named input: nope")


def test_repeated_keys_keep_the_first_value():  # rapidjson FindMember
    body = '{"instances": [[1]], "signature_name": "predict_images", "instances": "oops", ' \
           '"signature_name": 7}'
    signature, arrays, _ = parse(body)
    assert signature == "predict_images" and arrays["default"].tolist() == [[1]]
    _, arrays, _ = parse('{"inputs": {"t": ["a"], "t": ["b", "c"]}}', t=tf.string)
    assert arrays["t"].tolist() == [b"a"]


def test_parse_errors_read_as_rapidjson_reports_them():
    cases = {"instances = [1, 2]": "Invalid value. at offset: 0",
             "   ": "The document is empty. at offset: 3",
             '{"instances": [1, 2': "Missing a comma or ']' after an array element.",
             '{"instances": [1] "x": 1}': "Missing a comma or '}' after an object member.",
             '{instances: [1]}': "Missing a name for object member.",
             '{"instances" [1]}': "Missing a colon after a name of object member.",
             '{"instances": ["abc': "Missing a closing quotation mark in string.",
             '{"instances": ["\\q"]}': "Invalid escape character in string.",
             '{"instances": ["\\u12G4"]}': "Incorrect hex digit after \\u escape in string.",
             '{"instances": ["\\ud800"]}': "The surrogate pair in string is invalid. at offset: 16",
             '{"instances": ["\\ud800\\u0041"]}': "The surrogate pair in string is invalid."}
    for body, want in cases.items():
        message = parse_error(body)
        assert message.startswith("JSON Parse error: ") and want in message, (body, message)


def test_lone_low_surrogate_is_kept_as_its_three_bytes():  # rapidjson 1.1.0 writes it so
    _, arrays, _ = parse('{"instances": ["a\\udc00", "\\ud83d\\ude00", "\\\\ud800"]}', t=tf.string)
    assert arrays["t"].tolist() == [b"a\xed\xb0\x80", "\U0001f600".encode(), b"\\ud800"]


# ---------------------------------------------------------------- json_tensor_test.cc: responses
INTS = np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)


def test_response_single_and_multiple_tensors():  # FromJson{Single,SingleScalar,MultipleNamed}Tensor(s)
    assert format_outputs({"int_tensor": INTS}, "row") == {"predictions": INTS.tolist()}
    assert format_outputs({"int_tensor": INTS}, "columnar") == {"outputs": INTS.tolist()}
    assert format_outputs({"t": np.arange(1, 6)}, "row") == {"predictions": [1, 2, 3, 4, 5]}
    outputs = {"int_tensor": INTS, "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], object),
               "float_tensor": np.array([[1.0], [2.0]], np.float32),
               "double_scalar_tensor": np.array([8.0, 9.0]),
               "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], object)}
    rows = format_outputs(outputs, "row")["predictions"]
    assert rows[1] == {"double_scalar_tensor": 9.0, "float_tensor": [2.0], "int_tensor": INTS[1].tolist(),
                       "str_tensor": ["baz", "bat"],
                       "str_tensor_bytes": [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]}
    columns = format_outputs(outputs, "columnar")["outputs"]
    assert columns["str_tensor_bytes"][0] == [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]
    assert columns["double_scalar_tensor"] == [8.0, 9.0]


def test_response_non_finite_floats_and_zero_batches():  # ...NonFinite, ...ZeroBatchTensor(s)
    values = np.array([[np.nan, np.inf], [3, -np.inf]], np.float32)
    assert json.dumps(format_outputs({"f": values}, "row")) == \
        '{"predictions": [[NaN, Infinity], [3.0, -Infinity]]}'
    assert format_outputs({"i": np.zeros((0, 2), np.int32)}, "row") == {"predictions": []}
    assert format_outputs({"s": np.zeros((0, 1, 2), object), "f": np.zeros((0, 3, 4), np.float32)},
                          "row") == {"predictions": []}


def test_response_errors():  # FromJsonSingleTensorErrors, FromJsonMultipleNamedTensorsErrors
    cases = [({}, "empty tensor map"), ({"tensor": np.array([1 + 2j, 3j], np.complex64)},
                                         "tensor type: complex64"),
             ({"tensor": np.array(1, np.int32)}, "no shape information"),
             ({"int_tensor": np.zeros((2, 3), np.int32), "str_tensor": np.zeros((1, 3), object)},
              "inconsistent batch size"),
             ({"int_tensor": np.zeros((0, 2), np.int32), "str_tensor": np.zeros((1, 2), object)},
              "inconsistent batch size")]
    for outputs, message in cases:
        with pytest.raises(StatusError) as err:
            format_outputs(outputs, "row")
        assert err.value.code == "INVALID_ARGUMENT" and message in err.value.message


# ---------------------------------------------------------------- http_rest_api_handler_test.cc
MALFORMED = [("GET", "/v1/foo"), ("POST", "/v1/foo"), ("GET", "/v1/models/debug/model_name"),
             ("POST", "/v1/models"), ("GET", "/v1/models/foo:predict"),
             ("GET", "/v1/models/foo/version/50:predict"), ("POST", "/v1/models/foo/version/50:regress"),
             ("POST", "/v1/models/foo/versions/HELLO:regress"), ("POST", "/v1/models/foo/metadata"),
             ("POST", "/v1/models/foo/label/some_label:regress"),
             ("POST", "/v1/models/foo/versions/50/labels/some_label:regress"),
             ("POST", "/v1/models/foo/versions/some_label:regress")]


def test_unsupported_api_calls(server):  # UnsupportedApiCalls
    for method, path in MALFORMED:
        code, headers, data = call(server, method, path, b"{}" if method == "POST" else b"")
        assert code == 400 and headers["Content-Type"] == "application/json", (method, path)
        assert json.loads(data) == {"error": f"Malformed request: {method} {path}"}
    code, _, data = call(server, "GET", "/v1/models")
    assert code == 400 and json.loads(data) == {"error": "Missing model name in request."}
    code, _, data = call(server, "POST", f"/v1/models/foo/versions/{2 ** 64 - 1}:regress", b"{}")
    assert code == 400 and "Failed to convert version" in json.loads(data)["error"]


def test_predict_name_version_and_request_errors(server):  # Predict{ModelNameVersion,Request}Errors
    for path in ("/v1/models/foo:predict", "/v1/models/foo/versions/50:predict",
                 "/v1/models/stub99:predict", "/v1/models/stub/versions/99:predict"):
        assert predict(server, {"instances": ["a"]}, path)[0] == 404, path
    assert predict(server, b"")[1] == {"error": "JSON Parse error: The document is empty"}
    code, doc = predict(server, b"instances = [1, 2]")
    assert code == 400 and doc["error"].startswith("JSON Parse error: Invalid value")
    code, doc = predict(server, {"instances": [1, 2]})
    assert code == 400 and "not of expected type: string" in doc["error"]
    code, doc = predict(server, {"signature_name": 100})
    assert code == 400 and doc["error"].endswith("'signature_name' key must be a string value.")


def test_predict_status_and_metadata(server):  # Predict, GetStatus, GetModelMetadata
    code, headers, data = call(server, "POST", "/v1/models/stub:predict", {"instances": ["ab"]})
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(data)["predictions"][0]["text"] == "BA"
    for body, key in [({"signature_name": "serving_default", "instances": ["ab"]}, "predictions"),
                      ({"signature_name": "serving_default", "inputs": ["ab"]}, "outputs")]:
        code, doc = predict(server, body, "/v1/models/stub/versions/1:predict")
        assert code == 200 and set(doc) == {key}
    code, _, data = call(server, "GET", "/v1/models/stub/versions/1")
    assert code == 200 and json.loads(data) == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    code, _, data = call(server, "GET", "/v1/models/stub/metadata")
    doc = json.loads(data)
    assert code == 200 and set(doc) == {"model_spec", "metadata"}
    assert doc["model_spec"] == {"name": "stub", "signature_name": "", "version": "2"}
    assert {"serving_default", "beam_search"} <= set(doc["metadata"]["signature_def"]["signature_def"])


def test_status_to_http_table():  # http_server.cc ToHTTPStatusCode
    assert status.HTTP_STATUS == {
        "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
        "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403,
        "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
        "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
        "UNAUTHENTICATED": 401}


# ---------------------------------------------------------------- TF Serving's HTTP layer
def test_paths_are_case_insensitive_but_verbs_are_not(server):  # http_rest_api_util.cc
    for path in ("/V1/MODELS/stub:predict", "/v1/Models/stub/VERSIONS/1:predict"):
        assert predict(server, {"instances": ["ab"]}, path)[0] == 200, path
    for verb in ("PREDICT", "Predict", "CLASSIFY", "Regress"):
        path = f"/v1/models/stub:{verb}"
        assert predict(server, {"instances": ["ab"]}, path) == (
            400, {"error": f"Malformed request: POST {path}"})
    code, _, data = call(server, "GET", "/v1/models/stub/METADATA")  # read as the status
    assert code == 200 and set(json.loads(data)) == {"model_version_status"}


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


def test_other_methods_are_malformed_requests(server):  # http_rest_api_handler.cc
    for method in ("PUT", "DELETE", "PATCH"):
        for path in ("/v1/models/stub", "/v1/models/stub:predict"):
            code, headers, data = call(server, method, path, b'{"instances": ["a"]}')
            assert code == 400 and headers["Content-Type"] == "application/json"
            assert json.loads(data) == {"error": f"Malformed request: {method} {path}"}
    code, headers, data = call(server, "HEAD", "/v1/models/stub")
    assert code == 400 and data == b"" and int(headers["Content-Length"]) > 0
    assert call(server, "PUT", "/other")[0] == 404
    assert call(server, "TRACE", "/v1/models/stub")[0] == 501  # libevent refuses it too


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
def cors_server(store):
    handle = serve(str(store / "base"), "stub", port=None, rest_api_port=0, poll_seconds=0,
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


def test_a_failure_while_answering_is_a_500_not_a_dropped_connection(server, monkeypatch):
    def broken(method, path, body):
        return 200, {"predictions": object()}  # not JSON: writing the answer fails

    monkeypatch.setattr(server._rest.api, "handle", broken)
    code, _, data = call(server, "GET", "/v1/models/stub")
    assert code == 500 and json.loads(data)["error"].startswith("Internal: ")

