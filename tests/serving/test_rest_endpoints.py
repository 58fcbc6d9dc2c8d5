"""REST routes, model status and metadata, and HTTP status codes, against TF Serving's.

The cases of TF Serving's model_servers/http_rest_api_handler_test.cc restated for the
local server (the stub model, versions 1 and 2): malformed and unsupported paths and
methods (a 400 ``Malformed request``), unknown model names and versions (404), request
errors, predict on the latest and on a given version, the model status
(``/v1/models/<name>[/versions/<v>]``) and metadata endpoints, the status-code to HTTP
table of http_server.cc, paths matched case-insensitively but verbs (``:predict``) not,
and a failure while writing an answer (a 500, not a dropped connection).
"""

import json

import pytest
from rest_helpers import call, predict

from tfseq2seq.serving import status


@pytest.fixture(scope="module")
def server(parity_server):  # session-scoped in conftest.py
    return parity_server


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


def test_a_failure_while_answering_is_a_500_not_a_dropped_connection(server, monkeypatch):
    def broken(method, path, body):
        return 200, {"predictions": object()}  # not JSON: writing the answer fails

    monkeypatch.setattr(server._rest.api, "handle", broken)
    code, _, data = call(server, "GET", "/v1/models/stub")
    assert code == 500 and json.loads(data)["error"].startswith("Internal: ")
