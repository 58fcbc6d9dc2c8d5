"""Security and shutdown behaviour of the local server (issue 6), loopback only.

- binds 127.0.0.1 by default (the listening sockets of the server process);
- body, row and tensor-size limits hold on the wire, without allocating first;
- model names and versions from requests never become file paths;
- nothing from a request is evaluated or unpickled (behaviour + a static check);
- SIGTERM lets a slow in-flight request finish, then the process exits 0.
"""

import ast
import base64
import builtins
import http.client
import ipaddress
import os
import pickle
import signal
import socket
import time

import grpc
import pytest
import requests

from server_fixtures import ServerProcess, build_stub, expected_text

SERVER_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "tfseq2seq", "serving")
MAX_BYTES, MAX_ROWS = 64 << 10, 16


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("security")
    build_stub(str(root / "base" / "1"))
    # A loadable model right next to the base path: where a name like "../evil" would lead.
    build_stub(str(root / "evil" / "1"), suffix="EVIL")
    return root


@pytest.fixture(scope="module")
def proc(root):
    server = ServerProcess(root / "base", "stub", "--max_request_bytes", MAX_BYTES,
                           "--max_batch_rows", MAX_ROWS, "--poll_seconds", "0")
    yield server
    server.kill()


def _listening(pid):
    """[(address, port)] of the TCP sockets process ``pid`` listens on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # state LISTEN
                    address, port = fields[1].split(":")
                    found.append((_proc_net_address(address), int(port, 16)))
    return found


def _proc_net_address(hex_address):
    """/proc/net/tcp{,6} address (32-bit words in host order) -> ipaddress object."""
    raw = b"".join(bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, len(hex_address), 8))
    address = ipaddress.ip_address(raw)
    return getattr(address, "ipv4_mapped", None) or address


def test_binds_loopback_only_by_default(proc):
    listening = _listening(proc.pid)
    assert {port for _, port in listening} == {proc.rest_port, proc.grpc_port}
    assert {str(address) for address, _ in listening} == {"127.0.0.1"}, listening


def _raw_http(port, head, body=b"", timeout=30):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_limits_hold_without_allocating(proc):
    peak = proc.rss_kb("VmHWM")
    predict = b"POST /v1/models/stub:predict HTTP/1.1\r\nHost: x\r\n"
    started = time.monotonic()
    assert _raw_http(proc.rest_port, predict + b"Content-Length: 1000000000000\r\n\r\n") == 413
    # a chunk that claims a terabyte is refused from its size line, before any of it is read
    assert _raw_http(proc.rest_port, predict + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n"
                     % 10 ** 12) == 413
    assert time.monotonic() - started < 10  # answered from the headers, body never read
    r = requests.post(proc.rest_url + "/v1/models/stub:predict", timeout=30,
                      json={"instances": ["a"] * (MAX_ROWS + 1)})
    assert r.status_code == 400 and "max_batch_rows" in r.json()["error"]
    deep = '{"instances": ' + "[" * 900 + '"a"' + "]" * 900 + "}"  # parses, but rank 900
    r = requests.post(proc.rest_url + "/v1/models/stub:predict", data=deep, timeout=30)
    assert r.status_code == 400 and "levels deep" in r.json()["error"]
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(proc.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        # A few bytes claiming 10^7 rows / 2*10^7 elements (a TensorProto repeats its last
        # value): refused from the shape, before materializing hundreds of MB; so is a
        # shape within the element limit that the signature's rank refuses ([1, 2^24]).
        for dims in ([10 ** 7], [1, 2 * 10 ** 7], [-1], [1, 1 << 24]):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "stub"
            tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"x"])
            for size in dims:
                tensor.tensor_shape.dim.add(size=size)
            request.inputs["text"].CopyFrom(tensor)
            with pytest.raises(grpc.RpcError) as err:
                stub.Predict(request, timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert proc.rss_kb("VmHWM") < peak + 50_000  # the peak RSS did not jump (kB)
    assert requests.post(proc.rest_url + "/v1/models/stub:predict", json={"instances": ["ab"]},
                         timeout=30).json()["predictions"][0]["text"] == "ba"


# ------------------------------------------------------------------ names are not paths
TRAVERSALS = ["..%2Fevil", "..%2F..%2Fevil", "%2E%2E%2Fevil", "stub%2F..%2F..%2Fevil",
              "..%2F..%2Fetc", "%2Fetc", "..", "."]


@pytest.fixture(scope="module")
def local(root):
    from tfseq2seq.serving.app import serve

    handle = serve(str(root / "base"), "stub", port=0, rest_api_port=0, poll_seconds=0,
                   max_request_bytes=MAX_BYTES, max_batch_rows=MAX_ROWS)
    yield handle
    handle.stop(grace=2)


@pytest.fixture
def file_accesses(local, monkeypatch):
    """Records every path the server process touches through Python's file APIs."""
    import tensorflow as tf

    seen = []

    def spy(fn):
        def wrapper(path, *args, **kwargs):
            seen.append(os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else path)
            return fn(path, *args, **kwargs)
        return wrapper

    for module, name in [(builtins, "open"), (os, "open"), (os, "stat"), (os, "lstat"),
                         (os, "scandir"), (os, "listdir"), (tf.saved_model, "load")]:
        monkeypatch.setattr(module, name, spy(getattr(module, name)))
    monkeypatch.setattr(local.manager, "_loader", spy(local.manager._loader))
    return seen


def test_request_names_and_versions_never_become_paths(local, file_accesses):
    conn = http.client.HTTPConnection("127.0.0.1", local.rest_port, timeout=30)
    body = b'{"instances": ["ab"]}'
    replies = []
    for name in TRAVERSALS:
        for method, path in [("GET", f"/v1/models/{name}"), ("GET", f"/v1/models/{name}/versions/1"),
                             ("GET", f"/v1/models/{name}/metadata"),
                             ("POST", f"/v1/models/{name}:predict"),
                             ("POST", f"/v1/models/{name}/versions/1:predict")]:
            conn.request(method, path, body=body if method == "POST" else None)
            response = conn.getresponse()
            replies.append((path, response.status, response.read()))
    for path in ["/v1/models/stub/versions/..%2F..%2F1:predict", "/v1/models/stub/versions/../../1:predict",
                 "/v1/models/stub/versions/-1:predict", "/v1/models/../evil:predict",
                 "/v1/models/stub/versions/1%2F..%2F..%2F..%2Fevil%2F1:predict"]:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        replies.append((path, response.status, response.read()))
    conn.close()
    for path, status, data in replies:
        assert status in (400, 404), (path, status, data)
        assert b"EVIL" not in data and b"LIVE" not in data
    with grpc.insecure_channel(local.grpc_target) as channel:
        from tfseq2seq.serving.client import GrpcClient, ServingError

        for name in ["../evil", "../../evil", "stub/../../evil", os.path.dirname(local.manager.base_path)
                     + "/evil", "."]:
            with pytest.raises(ServingError) as err:
                GrpcClient(local.grpc_target, name).translate(["ab"])
            assert err.value.code == grpc.StatusCode.NOT_FOUND
    touched = [p for p in file_accesses if isinstance(p, str) and ("evil" in p or "etc" in p)]
    assert not touched, touched
    assert local.manager.versions() == [1]


# ------------------------------------------------------------------ no eval, no unpickle
class _Trap:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_request_data_is_never_evaluated_or_unpickled(local, tmp_path):
    from tfseq2seq.serving.client import GrpcClient, RestClient

    trap = str(tmp_path / "trap")
    payloads = [pickle.dumps(_Trap(trap)), f"__import__('os').mkdir({trap!r})".encode(),
                b"{{7*7}}${7*7}"]
    with RestClient(local.rest_url, "stub") as rest, GrpcClient(local.grpc_target, "stub") as grpc_c:
        for client in (rest, grpc_c):
            rows = client.translate(payloads)  # the text comes back reversed: it is data
            assert [r["text"] for r in rows[1:]] == [expected_text(p.decode()) for p in payloads[1:]]
            assert rows[0]["lengths"] > 0
    doc = {"signature_name": f"__import__('os').mkdir({trap!r})",
           "instances": [{"b64": base64.b64encode(payloads[0]).decode()}]}
    r = requests.post(local.rest_url + "/v1/models/stub:predict", json=doc, timeout=30)
    assert r.status_code == 400 and "not found" in r.json()["error"]
    assert not os.path.exists(trap)


def test_server_sources_have_no_eval_exec_or_pickle():
    banned_modules = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
    banned_calls = {"eval", "exec", "compile", "__import__", "execfile", "input"}
    for name in sorted(os.listdir(SERVER_PACKAGE)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(SERVER_PACKAGE, name)
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_modules, (name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in banned_modules, (name, node.lineno)
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name):  # the builtins (re.compile etc. are fine)
                    assert func.id not in banned_calls, (name, node.lineno)
                elif isinstance(func, ast.Attribute):  # yaml.load, np.load, builtins.eval
                    owner = getattr(func.value, "id", "")
                    assert not (func.attr == "load" and owner in ("yaml", "np", "numpy")), (name, node.lineno)
                    assert not (owner == "builtins" and func.attr in banned_calls), (name, node.lineno)
                assert not any(k.arg == "allow_pickle" for k in node.keywords), (name, node.lineno)


# ------------------------------------------------------------------ SIGTERM (runs last)
def test_sigterm_finishes_a_slow_in_flight_request_then_exits_0(proc):
    body = b'{"instances": ["slow"]}'
    head = (b"POST /v1/models/stub:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", proc.rest_port), timeout=30) as s:
        s.sendall(head + body[:5])  # the request is in flight: headers read, body pending
        time.sleep(0.5)
        proc.proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # a slow client: the server must wait for it (grace is 5 s)
        assert proc.proc.poll() is None, "exited with a request in flight"
        s.sendall(body[5:])
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    assert status_line.split()[1] == b"200", data[:300]
    assert b'"text": "wols"' in rest and b"Connection: close" in rest
    assert proc.proc.wait(timeout=30) == 0
    assert "stopped" in proc.proc.stdout.read()
