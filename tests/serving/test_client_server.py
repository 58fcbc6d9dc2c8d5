"""End-to-end tests of tfseq2seq.serving (REST + gRPC) with tfseq2seq.serving.client: status,
metadata, predict and errors against one running server. Batching, shutdown, hot
reload and the server process are in ``test_server_lifecycle.py``.

Everything binds 127.0.0.1 only; every loop is bounded in count and time.
"""

import base64

import grpc
import numpy as np
import pytest
import requests

from tfseq2seq.serving.app import serve
from tfseq2seq.serving.client import GrpcClient, RestClient, ServingError
from tfseq2seq.serving.rest import format_outputs

from server_fixtures import MAX_OUT, build_store, expected_text

OUTPUTS = {"text", "tokens", "token_ids", "lengths", "scores", "attention"}
MAX_BYTES = 1 << 20
MAX_ROWS = 64


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("stub_models"))


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
    (None, {"instances": [["a", "b"], ["c"]]}, 400, "Expecting tensor size: 2 but got: 1"),
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
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

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
