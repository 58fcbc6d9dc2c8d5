"""Bad requests always get an answer: property-based fuzzing of the server process.

Hypothesis drives the REST paths (mutated JSON documents, random bytes, odd tensors:
dtypes, ranks, empty, huge; gzip and chunked bodies; odd methods and paths) and the
gRPC ones (random PredictRequests, TensorProtos of any dtype and shape, raw bytes) against
one ``python -m tfseq2seq.serving.app`` process.  Every request must be answered:

- REST: a 2xx, or a 4xx with a ``{"error": "..."}`` body, or 501 (not implemented:
  unknown methods, ``:classify``/``:regress``, transfer codings other than chunked);
  never a closed connection without an answer nor another 5xx;
- gRPC: OK, or INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION (TF Serving's code for
  an unknown signature key); bytes that are not a protobuf of the method's request at all
  get gRPC's own INTERNAL "Exception deserializing request!" (the handler never sees
  them; C++ gRPC, hence TF Serving, answers INTERNAL too);

and the process must be alive and answering afterwards.  The runs are deterministic
(``derandomize``) and bounded: a fixed number of examples each, and a time budget after
which the remaining examples are skipped.
"""

import gzip
import json
import random
import socket
import time

import grpc
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server_fixtures import ServerProcess, build_stub

pytestmark = pytest.mark.slow

MAX_BYTES, MAX_ROWS = 64 << 10, 32
REST_SECONDS, GRPC_SECONDS = 30.0, 15.0
BOMB = gzip.compress(b'{"instances": ["' + b"a" * (8 << 20) + b'"]}')  # 8 MiB from ~8 KiB
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def proc(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    build_stub(str(root / "base" / "1"))
    server = ServerProcess(root / "base", "stub", "--max_request_bytes", MAX_BYTES,
                           "--max_batch_rows", MAX_ROWS, "--poll_seconds", "0")
    yield server
    server.kill()


class Budget:
    """Skips the rest of a property's examples once its time is up."""

    def __init__(self, seconds):
        self.seconds, self.start, self.runs = seconds, None, 0

    def spent(self):
        self.start = self.start or time.monotonic()
        self.runs += 1
        return time.monotonic() - self.start > self.seconds


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


@st.composite
def mutated(draw, body):
    """Byte flips, cuts, insertions and repeats of a document."""
    data = bytearray(body)
    rng = random.Random(draw(st.integers(0, 2 ** 32)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = rng.randrange(len(data))
        op = rng.choice(["flip", "cut", "insert", "repeat", "truncate"])
        if op == "flip":
            data[at] = rng.randrange(256)
        elif op == "cut":
            del data[at:at + rng.randrange(1, 8)]
        elif op == "insert":
            data[at:at] = rng.choice([b"\\u", b"\\ud800", b"[", b"{", b'"', b"\xff", b",", b"\x00"])
        elif op == "repeat":
            data[at:at] = data[at:at + rng.randrange(1, 16)]
        else:
            del data[at:]
    return bytes(data)


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


def _exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused early (413) and closed: the answer is still there to read
        chunks = []
        try:
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


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


def assert_alive(proc):
    assert proc.proc.poll() is None, "the server process died"
    reply = _exchange(proc.rest_port, b"POST /v1/models/stub:predict HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\nContent-Length: 21\r\n\r\n"
                                      b'{"instances": ["ab"]}')
    assert b" 200 " in reply.split(b"\r\n", 1)[0] and b'"text": "ba"' in reply


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


# ---------------------------------------------------------------- gRPC
@st.composite
def tensor_protos(draw):
    from tensorflow.core.framework import tensor_pb2, types_pb2

    dtype = draw(st.one_of(st.sampled_from(sorted(types_pb2.DataType.values())),
                           st.integers(-5, 400)))
    proto = tensor_pb2.TensorProto(dtype=dtype)
    kind = draw(st.sampled_from(["small", "small", "deep", "huge"]))
    if kind == "small":
        dims = draw(st.lists(st.integers(0, 4), max_size=4))
    elif kind == "deep":
        dims = [1] * draw(st.sampled_from([31, 32, 33, 40, 64, 70]))
    else:
        dims = draw(st.lists(st.sampled_from([1, 2, 10 ** 7, 2 ** 40, 2 ** 63 - 1, -1, -2 ** 63]),
                             min_size=1, max_size=3))
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    proto.tensor_shape.unknown_rank = draw(st.booleans()) and draw(st.booleans())
    values = draw(st.sampled_from(["string", "int", "float", "content", "none", "bool", "half"]))
    count = draw(st.integers(0, 6))
    if values == "string":
        proto.string_val.extend(draw(st.lists(st.binary(max_size=20), max_size=count)))
    elif values == "int":
        proto.int_val.extend(draw(st.lists(st.integers(-2 ** 31, 2 ** 31 - 1), max_size=count)))
    elif values == "float":
        proto.float_val.extend(draw(st.lists(st.floats(width=32), max_size=count)))
    elif values == "bool":
        proto.bool_val.extend(draw(st.lists(st.booleans(), max_size=count)))
    elif values == "half":
        proto.half_val.extend(draw(st.lists(st.integers(0, 2 ** 16 - 1), max_size=count)))
    elif values == "content":
        proto.tensor_content = draw(st.binary(max_size=64))
    return proto


@st.composite
def predict_requests(draw):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = draw(st.sampled_from(["stub", "stub", "nope", "", "../stub"]))
    version = draw(st.sampled_from([None, None, 1, 2, 0, -1, 2 ** 63 - 1]))
    if version is not None:
        request.model_spec.version.value = version
    elif draw(st.booleans()) and draw(st.booleans()):
        request.model_spec.version_label = "stable"
    request.model_spec.signature_name = draw(st.sampled_from(
        ["", "", "serving_default", "beam_search", "nope"]))
    for name in draw(st.lists(st.sampled_from(["text", "text", "other", ""]), max_size=2, unique=True)):
        request.inputs[name].CopyFrom(draw(tensor_protos()))
    request.output_filter.extend(draw(st.lists(st.sampled_from(["text", "scores", "nope", "text"]),
                                               max_size=2)))
    return request


def _well_formed_text_tensor(draw_texts):
    from tensorflow.core.framework import tensor_pb2, types_pb2

    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=draw_texts)
    proto.tensor_shape.dim.add(size=len(draw_texts))
    return proto


def _parses(request_class, data):
    try:
        request_class.FromString(data)
    except Exception:  # DecodeError, invalid UTF-8 in a string field, ...
        return False
    return True


GRPC_OK = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.FAILED_PRECONDITION}


def test_grpc_requests_always_get_an_answer(proc):
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    budget, seen = Budget(GRPC_SECONDS), {}
    channel = grpc.insecure_channel(proc.grpc_target)
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    raw = {name: (channel.unary_unary(f"/tensorflow.serving.{name}"), request_class)
           for name, request_class in [
               ("PredictionService/Predict", predict_pb2.PredictRequest),
               ("PredictionService/GetModelMetadata", get_model_metadata_pb2.GetModelMetadataRequest),
               ("ModelService/GetModelStatus", get_model_status_pb2.GetModelStatusRequest)]}

    @st.composite
    def calls(draw):
        kind = draw(st.sampled_from(["predict"] * 5 + ["good", "metadata", "status", "raw", "mutated"]))
        if kind == "predict":
            return lambda: predict.Predict(draw(predict_requests()), timeout=60)
        if kind == "good":
            request = draw(predict_requests())
            request.model_spec.name = "stub"
            request.inputs.clear()
            texts = draw(st.lists(st.binary(max_size=30), max_size=MAX_ROWS + 2))
            request.inputs["text"].CopyFrom(_well_formed_text_tensor(texts))
            return lambda: predict.Predict(request, timeout=60)
        if kind == "metadata":
            request = get_model_metadata_pb2.GetModelMetadataRequest()
            if draw(st.booleans()):
                request.model_spec.CopyFrom(draw(predict_requests()).model_spec)
            request.metadata_field.extend(draw(st.lists(st.sampled_from(["signature_def", "x", ""]),
                                                        max_size=2)))
            return lambda: predict.GetModelMetadata(request, timeout=60)
        if kind == "status":
            request = get_model_status_pb2.GetModelStatusRequest()
            if draw(st.booleans()):
                request.model_spec.CopyFrom(draw(predict_requests()).model_spec)
            return lambda: models.GetModelStatus(request, timeout=60)
        method, request_class = raw[draw(st.sampled_from(sorted(raw)))]
        data = draw(st.binary(max_size=100)) if kind == "raw" else \
            draw(mutated(draw(predict_requests()).SerializeToString() or b"\x0a\x00"))
        call = lambda: method(data, timeout=60)  # noqa: E731
        call.unparsable = not _parses(request_class, data)
        return call

    @settings(max_examples=1500, **SETTINGS)
    @given(calls())
    def run(call):
        if budget.spent():
            return
        try:
            call()
            code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            code = err.code()
            deserializing = code == grpc.StatusCode.INTERNAL and getattr(call, "unparsable", False) \
                and "deserializing" in err.details()
            assert code in GRPC_OK or deserializing, (code, err.details())
        seen[code] = seen.get(code, 0) + 1

    try:
        run()
    finally:
        channel.close()
    assert_alive(proc)
    assert {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND} <= \
        set(seen), seen

