"""End-to-end tests of tfseq2seq.server (REST + gRPC) with tfseq2seq.client.

Everything binds 127.0.0.1 only; every loop is bounded in count and time.
"""

import base64
import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import requests
from server_fixtures import MAX_OUT, build_stub, expected_text

from tfseq2seq.client import GrpcClient, RestClient, ServingError
from tfseq2seq.server.app import main, serve
from tfseq2seq.server.rest import format_outputs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUTS = {"text", "tokens", "token_ids", "lengths", "scores", "attention"}
MAX_BYTES = 1 << 20
MAX_ROWS = 64


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("stub_models")
    build_stub(str(root / "v1"), warmup=True)
    build_stub(str(root / "v2"), upper=True)
    build_stub(str(root / "v3"), upper=True, suffix="3")
    base = root / "base"
    base.mkdir()
    shutil.copytree(root / "v1", base / "1")
    shutil.copytree(root / "v2", base / "2")
    (base / "not_a_version").mkdir()
    return root


@pytest.fixture(scope="module")
def server(store):
    handle = serve(str(store / "base"), "stub", port=0, rest_api_port=0,
                   max_request_bytes=MAX_BYTES, max_batch_rows=MAX_ROWS, poll_seconds=0)
    yield handle
    handle.stop(grace=2)


@pytest.fixture(scope="module")
def rest(server):
    with RestClient(server.rest_url, "stub") as client:
        yield client


@pytest.fixture(scope="module")
def grpc_client(server):
    with GrpcClient(server.grpc_target, "stub") as client:
        yield client


def post(server, body, path="/v1/models/stub:predict", **kw):
    data = body if isinstance(body, (bytes, str)) else None
    return requests.post(server.rest_url + path, data=data,
                         json=None if data is not None else body, timeout=30, **kw)


def assert_healthy(server):
    r = post(server, {"instances": ["ok"]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["text"] == "KO"


# ---------------------------------------------------------------- status / metadata
def test_status_rest_and_grpc(server, rest, grpc_client):
    want = {"model_version_status": [
        {"version": v, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for v in ("2", "1")]}
    assert rest.status() == want
    assert grpc_client.status() == want
    assert rest.status(version=1)["model_version_status"] == want["model_version_status"][1:]
    assert grpc_client.status(version=1) == rest.status(version=1)
    for client, code in ((rest, 404), (grpc_client, grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(ServingError) as err:
            client.status(version=7)
        assert err.value.code == code and "Could not find version 7 of model stub" in err.value.message
    r = requests.get(server.rest_url + "/v1/models/nope", timeout=10)
    assert r.status_code == 404 and r.json() == {"error": "Could not find any versions of model nope"}


def test_metadata_rest_and_grpc(rest, grpc_client):
    meta = rest.metadata()
    assert meta["model_spec"] == {"name": "stub", "version": "2", "signature_name": ""}
    sigs = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "beam_search"} <= set(sigs)
    for name in ("serving_default", "beam_search"):
        sig = sigs[name]
        assert sig["method_name"] == "tensorflow/serving/predict"
        assert set(sig["inputs"]) == {"text"} and sig["inputs"]["text"]["dtype"] == "DT_STRING"
        assert set(sig["outputs"]) == OUTPUTS
        assert sig["outputs"]["token_ids"]["dtype"] == "DT_INT32"
        assert len(sig["outputs"]["attention"]["tensor_shape"]["dim"]) == 3
    assert grpc_client.metadata() == meta
    assert rest.metadata(version=1)["model_spec"]["version"] == "1"
    assert grpc_client.metadata(version=1) == rest.metadata(version=1)


# ---------------------------------------------------------------- predict
def test_predict_row_and_columnar_raw(server):
    r = post(server, {"instances": ["héllo", "ab"]})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    rows = r.json()["predictions"]
    assert [p["text"] for p in rows] == ["OLLÉH", "BA"]
    assert set(rows[0]) == OUTPUTS
    assert rows[0]["tokens"] == list("OLLÉH") and rows[0]["token_ids"] == [ord(c) for c in "OLLÉH"]
    assert rows[1]["tokens"] == ["B", "A", "", "", ""]  # padded to the batch's longest row
    assert rows[0]["lengths"] == 5 and rows[0]["scores"] == -5.0
    assert np.array(rows[0]["attention"]).shape == (5, 5)
    named = post(server, {"instances": [{"text": "héllo"}, {"text": "ab"}]}).json()
    assert named == r.json()
    cols = post(server, {"inputs": {"text": ["héllo", "ab"]}}).json()["outputs"]
    assert set(cols) == OUTPUTS and cols["text"] == ["OLLÉH", "BA"] and cols["lengths"] == [5, 2]
    assert post(server, {"inputs": ["héllo", "ab"]}).json()["outputs"] == cols


def test_b64_input_signature_and_version(server):
    payload = {"b64": base64.b64encode("héllo".encode()).decode()}
    r = post(server, {"signature_name": "beam_search", "instances": [payload]})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["text"] == "OLLÉH"
    assert r.json()["predictions"][0]["scores"] == -5.5
    r = post(server, {"instances": ["abc"]}, path="/v1/models/stub/versions/1:predict")
    assert r.json()["predictions"][0]["text"] == "cba"


def test_clients_translate(rest, grpc_client):
    for client in (rest, grpc_client):
        out = client.translate(["héllo", "ab"])
        assert [o["text"] for o in out] == ["OLLÉH", "BA"]
        assert out[1]["tokens"] == ["B", "A"] and out[1]["token_ids"] == [66, 65]  # trimmed
        assert out[1]["lengths"] == 2 and isinstance(out[1]["lengths"], int)
        assert out[1]["scores"] == -2.0 and isinstance(out[1]["scores"], float)
        assert np.array(out[1]["attention"]).shape == (2, 5)
        assert client.translate(["ab"], signature="beam_search")[0]["scores"] == -2.5
        assert client.translate(["ab"], version=1)[0]["text"] == "ba"
        assert client.translate(["ab"], version=2)[0]["text"] == "BA"
        assert client.translate([b"\xffa"])[0]["text"] == "A\ufffd"  # invalid UTF-8 in
        assert client.translate([]) == []
    assert rest.translate(["héllo", "ab"]) == grpc_client.translate(["héllo", "ab"])


def test_long_string(rest, grpc_client):
    text = "".join(chr(ord("a") + i % 26) for i in range(10_000))
    for client in (rest, grpc_client):
        out = client.translate([text])[0]
        assert out["text"] == expected_text(text, upper=True)
        assert out["lengths"] == MAX_OUT and len(out["tokens"]) == MAX_OUT
        assert len(out["attention"]) == MAX_OUT and len(out["attention"][0]) == 10_000


def test_non_utf8_and_bytes_outputs_are_base64():
    outputs = {"text": np.array([b"\xff\xfe", b"ok"], dtype=object),
               "raw_bytes": np.array([b"ok", b"ok"], dtype=object),
               "scores": np.array([0.2, -1.0], dtype=np.float32)}
    rows = format_outputs(outputs, "row")["predictions"]
    assert rows[0]["text"] == {"b64": base64.b64encode(b"\xff\xfe").decode()}
    assert rows[1]["text"] == "ok" and rows[1]["raw_bytes"] == {"b64": "b2s="}
    assert rows[0]["scores"] == 0.2  # float32 written with its shortest repr


# ---------------------------------------------------------------- errors
REST_ERRORS = [
    ("/v1/models/nope:predict", {"instances": ["a"]}, 404, "Servable not found for request: Latest(nope)"),
    ("/v1/models/stub/versions/9:predict", {"instances": ["a"]}, 404, "Specific(stub, 9)"),
    ("/v1/models/stub/labels/canary:predict", {"instances": ["a"]}, 400, "version_label"),
    ("/v1/models/stub/versions/..%2F1:predict", {"instances": ["a"]}, 400, "Malformed request"),
    (None, {"signature_name": "nope", "instances": ["a"]}, 400, 'Serving signature name: "nope" not found'),
    (None, {"signature_name": 3, "instances": ["a"]}, 400, "'signature_name' key must be a string"),
    (None, {"instances": [{"txt": "a"}]}, 400, "does not have named input: txt"),
    (None, {"inputs": {"txt": ["a"]}}, 400, "Missing named input: text"),
    (None, {"instances": [1, 2]}, 400, "is not of expected type: string"),
    (None, {"inputs": [1.5]}, 400, "is not of expected type: string"),
    (None, {"instances": [["a", "b"], ["c"]]}, 400, "unexpected size"),
    (None, {"instances": [["a"]]}, 400, "incompatible"),
    (None, b'{"instances": ["a"', 400, "JSON Parse error"),
    (None, b"", 400, "The document is empty"),
    (None, b"[1, 2]", 400, "Is not object"),
    (None, {"instances": []}, 400, "No values in 'instances' array"),
    (None, {"instances": ["a"], "inputs": ["a"]}, 400, "expecting only one of"),
    (None, {"foo": 1}, 400, "Missing 'inputs' or 'instances' key"),
    (None, {"instances": [{"b64": "!!!"}]}, 400, "Unable to base64 decode"),
    (None, {"instances": ["a"] * (MAX_ROWS + 1)}, 400, "max_batch_rows"),
    (None, {"instances": ["__raise__"]}, 400, "stub: forced failure"),
    ("/v1/models/stub:classify", {"examples": []}, 501, "classify"),
]


@pytest.mark.parametrize("path,body,status,message", REST_ERRORS)
def test_rest_errors(server, path, body, status, message):
    r = post(server, body, path=path or "/v1/models/stub:predict")
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and message in r.json()["error"]
    assert_healthy(server)


def test_rest_oversized_body_and_unknown_paths(server, rest):
    r = post(server, {"instances": ["x" * (MAX_BYTES + 10)]})
    assert r.status_code == 413 and "max_request_bytes" in r.json()["error"]
    assert requests.get(server.rest_url + "/other", timeout=10).status_code == 404
    assert requests.get(server.rest_url + "/v1/models", timeout=10).status_code == 400
    with pytest.raises(ServingError) as err:
        rest.translate(["a"], signature="nope")
    assert err.value.code == 400 and "nope" in err.value.message
    assert_healthy(server)


def grpc_predict(server, texts=("a",), name="stub", signature="", inputs=None, version=None):
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, value in (inputs or {"text": np.array(list(texts), dtype=object)}).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    with grpc.insecure_channel(server.grpc_target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


GRPC_ERRORS = [
    (dict(name="nope"), grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    (dict(version=9), grpc.StatusCode.NOT_FOUND, "Specific(stub, 9)"),
    (dict(signature="nope"), grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
    (dict(inputs={"txt": np.array([b"a"], dtype=object)}), grpc.StatusCode.INVALID_ARGUMENT, "Sent extra: {txt}"),
    (dict(inputs={"text": np.array([1.0], np.float32)}), grpc.StatusCode.INVALID_ARGUMENT, "to be string but float32"),
    (dict(texts=["a"] * (MAX_ROWS + 1)), grpc.StatusCode.INVALID_ARGUMENT, "max_batch_rows"),
    (dict(texts=["__raise__"]), grpc.StatusCode.INVALID_ARGUMENT, "stub: forced failure"),
    (dict(texts=["x" * (MAX_BYTES + 10)]), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
]


@pytest.mark.parametrize("kwargs,code,message", GRPC_ERRORS)
def test_grpc_errors(server, grpc_client, kwargs, code, message):
    with pytest.raises(grpc.RpcError) as err:
        grpc_predict(server, **kwargs)
    assert err.value.code() == code and message in err.value.details()
    assert grpc_client.translate(["ok"])[0]["text"] == "KO"


def test_grpc_response_model_spec_and_client_error(server, grpc_client):
    import tensorflow as tf

    response = grpc_predict(server, texts=["ab"], signature="beam_search", version=1)
    assert (response.model_spec.name, response.model_spec.version.value,
            response.model_spec.signature_name) == ("stub", 1, "beam_search")
    assert set(response.outputs) == OUTPUTS
    # The outputs are exactly what tf.make_tensor_proto makes of the model's outputs.
    outputs = server.manager.get(1).run("beam_search", {"text": np.array([b"ab"], dtype=object)})
    for name, value in outputs.items():
        want = tf.make_tensor_proto(value)
        assert response.outputs[name].SerializeToString(deterministic=True) == \
            want.SerializeToString(deterministic=True), name
    with pytest.raises(ServingError) as err:
        grpc_client.translate(["a"], version=9)
    assert err.value.code == grpc.StatusCode.NOT_FOUND and "Specific(stub, 9)" in err.value.message


# ---------------------------------------------------------------- concurrency / batching
@pytest.mark.parametrize("batching,threads", [(False, None), (True, None), (True, 1)])
def test_concurrent_requests(store, batching, threads):
    handle = serve(str(store / "base"), "stub", port=0, rest_api_port=0, poll_seconds=0,
                   enable_batching=batching, max_batch_size=16, batch_timeout_micros=20_000,
                   num_batch_threads=threads)
    try:
        rest_c = RestClient(handle.rest_url, "stub", timeout=30)
        grpc_c = GrpcClient(handle.grpc_target, "stub", timeout=30)

        def worker(i):
            client = rest_c if i % 2 else grpc_c
            for j in range(5):
                if i < 4 and j == 2:  # a failing request must not fail its batch-mates
                    with pytest.raises(ServingError, match="forced failure"):
                        client.translate(["__raise__"])
                    continue
                text = f"req{i}-{j}" + "x" * (i % 4)
                assert client.translate([text])[0]["text"] == expected_text(text, upper=True)
            return True

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            results = [f.result(timeout=60) for f in [pool.submit(worker, i) for i in range(32)]]
        assert all(results)
        sizes = handle.manager.get().batch_sizes
        assert sum(n * count for n, count in sizes.items()) == 32 * 5 - 4  # failures uncounted
        if batching:
            assert max(sizes) > 1, sizes
        else:
            assert set(sizes) == {1}, sizes
        grpc_c.close()
        rest_c.close()
    finally:
        handle.stop(grace=2)


def test_next_batch_starts_before_the_finished_batch_wakes_its_followers(monkeypatch):
    from tfseq2seq.server import batching

    monkeypatch.setattr(batching, "HANDOFF_SECONDS", 5.0)  # the order below is then certain
    starts, finished, lock = [], [], threading.Lock()

    class Servable:
        def run(self, signature, inputs):
            with lock:
                starts.append((time.monotonic(), len(inputs["x"])))
            time.sleep(0.3)
            return {"y": inputs["x"] * 2}

    servable = Servable()
    alone = batching.Batcher(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1)
    assert alone.run(servable, "s", {"x": np.array([5])})["y"].tolist() == [10]  # no stall
    starts.clear()
    # Full batches (4 rows) close at once; the long timeout only keeps them together.
    batcher = batching.Batcher(max_batch_size=4, batch_timeout_micros=10_000_000,
                               num_batch_threads=1)

    def request(value):
        out = batcher.run(servable, "s", {"x": np.array([value])})
        with lock:
            finished.append((time.monotonic(), value))
        return out["y"].tolist()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        first = [pool.submit(request, v) for v in range(4)]  # one full batch, running...
        time.sleep(0.1)
        second = [pool.submit(request, v) for v in range(10, 14)]  # ...while this one waits
        assert [f.result(timeout=30) for f in first + second] == \
            [[2 * v] for v in [*range(4), *range(10, 14)]]
    assert [rows for _, rows in starts] == [4, 4]
    second_start = starts[1][0]
    assert all(t > second_start for t, v in finished if v < 4), (starts, finished)


def test_num_batch_threads_option(store, monkeypatch, capsys):
    from tfseq2seq.cli import main as cli_main
    from tfseq2seq.server import app

    for threads, want in ((None, os.cpu_count()), (3, 3)):
        handle = serve(str(store / "base"), "stub", port=None, rest_api_port=None, poll_seconds=0,
                       enable_batching=True, num_batch_threads=threads)
        try:
            assert handle.runner.batcher.num_batch_threads == want
        finally:
            handle.stop(grace=1)
    with pytest.raises(ValueError, match="num_batch_threads must be >= 1, got 0"):
        serve(str(store / "base"), "stub", port=None, rest_api_port=None, poll_seconds=0,
              enable_batching=True, num_batch_threads=0)

    seen = []

    class FakeHandle:  # what serve() returns, minus the serving
        manager = type("M", (), {"versions": staticmethod(lambda: [1])})()
        grpc_target = rest_url = None

        def run_forever(self, grace=5.0):
            pass

    def fake_serve(*args, **kwargs):
        seen.append(kwargs.get("num_batch_threads"))
        return FakeHandle()

    monkeypatch.setattr(app, "serve", fake_serve)
    required = ["--model_name", "stub", "--model_base_path", str(store / "base")]
    assert main(required + ["--enable_batching", "--num_batch_threads", "2"]) == 0
    assert main(required) == 0
    cli_main(["serve", "--model-base-path", str(store / "base"), "--model-name", "stub",
              "--enable-batching", "--num-batch-threads", "4"])
    cli_main(["serve", "--model-base-path", str(store / "base"), "--model-name", "stub"])
    assert seen == [2, None, 4, None]  # None: the Batcher's default, one thread per CPU
    capsys.readouterr()
    for argv in (required + ["--num_batch_threads", "0"],
                 ["serve", *required, "--num-batch-threads", "-2"]):
        with pytest.raises(SystemExit) as exit_info:
            (main if argv[0] != "serve" else cli_main)(argv)
        assert exit_info.value.code == 2
        assert "must be >= 1, got " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(required + ["--num_batch_threads", "x"])
    assert "invalid int value: 'x'" in capsys.readouterr().err


def test_graceful_stop_finishes_in_flight(store):
    handle = serve(str(store / "base"), "stub", port=0, rest_api_port=0, poll_seconds=0)
    servable = handle.manager.get()
    original, entered = servable.run, threading.Event()

    def slow_run(signature, arrays):
        entered.set()
        time.sleep(1.0)
        return original(signature, arrays)

    servable.run = slow_run
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "r", requests.post(handle.rest_url + "/v1/models/stub:predict",
                           json={"instances": ["ab"]}, timeout=30)))
    thread.start()
    assert entered.wait(20)  # the request is in flight
    handle.stop(grace=5)
    thread.join(10)
    assert result["r"].status_code == 200 and result["r"].json()["predictions"][0]["text"] == "BA"
    with pytest.raises(requests.ConnectionError):
        requests.get(handle.rest_url + "/v1/models/stub", timeout=5)


# ---------------------------------------------------------------- hot reload
def test_hot_reload(store, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    shutil.copytree(store / "v1", base / "1")
    handle = serve(str(base), "stub", port=0, rest_api_port=0, poll_seconds=0.2)
    try:
        assert handle.manager.get(1).batch_sizes[2] == 1  # warmup replayed before serving
        client = RestClient(handle.rest_url, "stub")
        stop, failures, seen = threading.Event(), [], set()

        def load():
            for _ in range(2000):  # bounded; also stopped by the event
                if stop.is_set():
                    return
                try:
                    seen.add(client.translate(["ab"])[0]["text"])
                except Exception as exc:  # pragma: no cover - reported below
                    failures.append(exc)

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(0.3)
        shutil.copytree(store / "v3", base / ".incoming-3")
        os.rename(base / ".incoming-3", base / "3")
        (base / "4").mkdir()
        (base / "4" / "saved_model.pb").write_bytes(b"not a saved model")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "3BA" not in seen:
            time.sleep(0.1)
        time.sleep(0.3)
        stop.set()
        thread.join(10)
        assert not failures, failures[:3]
        assert {"ba", "3BA"} <= seen <= {"ba", "3BA"}
        states = {s["version"]: s for s in client.status()["model_version_status"]}
        assert states["3"]["state"] == "AVAILABLE" and states["1"]["state"] == "AVAILABLE"
        assert states["4"]["state"] == "END" and states["4"]["status"]["error_code"] == "UNKNOWN"
        shutil.rmtree(base / "3")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and handle.manager.versions() != [1]:
            time.sleep(0.1)
        assert client.translate(["ab"])[0]["text"] == "ba"
        assert client.status(version=3)["model_version_status"][0]["state"] == "END"
        client.close()
    finally:
        handle.stop(grace=2)


# ---------------------------------------------------------------- process level
def test_client_module_does_not_import_tensorflow():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('c', {os.path.join(REPO, 'tfseq2seq', 'client.py')!r})\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_main_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--model_base_path" in capsys.readouterr().out


@pytest.fixture(scope="module", autouse=True)
def app_process(store):
    """``python -m tfseq2seq.server.app`` in a subprocess, started with the module's first
    test so that its (slow) TensorFlow import overlaps the in-process tests."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfseq2seq.server.app", "--model_name", "stub",
         "--model_base_path", str(store / "base"), "--port", "0", "--rest_api_port", "0",
         "--poll_seconds", "0", "--log_level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_sigterm_stops_cleanly(app_process):
    lines = []
    reader = threading.Thread(target=lambda: lines.append(app_process.stdout.readline()),
                              daemon=True)
    reader.start()
    reader.join(90)
    assert lines and lines[0].startswith("serving model stub"), lines
    rest_url = lines[0].split("rest=")[1].strip()
    assert RestClient(rest_url, "stub").translate(["ab"])[0]["text"] == "BA"
    app_process.send_signal(signal.SIGTERM)
    assert app_process.wait(timeout=30) == 0
    assert "stopped" in app_process.stdout.read()
