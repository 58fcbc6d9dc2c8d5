"""The local server under load, faults and bad input (loopback only, bounded).

32 concurrent clients send a fixed number of tiny requests over REST and gRPC to
``python -m tfseq2seq.serving.app`` in a subprocess, cycling through valid requests
and every kind of bad one; midway a new model version is renamed into the base
path.  Proves: no valid request fails, every bad one gets its defined status
(HTTP code / gRPC code and message), the new version is served soon after it
appears (pinned-version requests keep the old one), and the server's RSS after
all requests is within 10% of its RSS after the first 1,000.

``TFSEQ2SEQ_LOAD_REQUESTS`` / ``TFSEQ2SEQ_LOAD_SECONDS`` override the request
count (default 10,000) and the time limit (default 900 s).
"""

import base64
import itertools
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import requests

from server_fixtures import ServerProcess, build_stub, expected_text

pytestmark = pytest.mark.slow

CLIENTS = 32
TOTAL = int(os.environ.get("TFSEQ2SEQ_LOAD_REQUESTS", 10_000))
EARLY = TOTAL // 10  # RSS is compared between request EARLY and request TOTAL
ROLLOUT_AT = TOTAL // 2
TIME_LIMIT = float(os.environ.get("TFSEQ2SEQ_LOAD_SECONDS", 900))
MAX_BYTES, MAX_ROWS = 64 << 10, 16
LONG = "".join(chr(ord("a") + i % 26) for i in range(10_000))
PREDICT = "/tensorflow.serving.PredictionService/Predict"
G = grpc.StatusCode


def _grpc_request(texts=("ab",), name="stub", signature="", version=None, key="text", values=None):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    value = values if values is not None else tf.constant(list(texts), tf.string)
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request.SerializeToString()


def _cases():
    """name -> (protocol, path or None, body bytes, expected status, message part, check)."""
    b64 = lambda data: {"b64": base64.b64encode(data).decode()}  # noqa: E731
    j = lambda doc: json.dumps(doc).encode()  # noqa: E731
    p = "/v1/models/stub:predict"
    rest = {
        "rest_row": (p, j({"instances": ["ab", "xyz"]}), 200, "", "texts:ab,xyz"),
        "rest_columnar": (p, j({"inputs": {"text": ["héllo"]}}), 200, "", "texts:héllo"),
        "rest_beam_b64": (p, j({"signature_name": "beam_search", "instances": [b64("ab".encode())]}),
                          200, "", "beam"),
        "rest_pinned_v1": ("/v1/models/stub/versions/1:predict", j({"instances": ["ab"]}), 200, "", "v1"),
        "rest_invalid_utf8_b64": (p, j({"instances": [b64(b"\xffab")]}), 200, "", "replacement"),
        "rest_long_10k": (p, j({"instances": [LONG]}), 200, "", "long"),
        "rest_malformed_json": (p, b'{"instances": ["a"', 400, "JSON Parse error", None),
        "rest_invalid_utf8_raw": (p, b'{"instances": ["\xff"]}', 400, "JSON Parse error", None),
        "rest_unknown_signature": (p, j({"signature_name": "nope", "instances": ["a"]}), 400,
                                   'signature name: "nope" not found', None),
        "rest_unknown_version": ("/v1/models/stub/versions/99:predict", j({"instances": ["a"]}), 404,
                                 "Specific(stub, 99)", None),
        "rest_unknown_model": ("/v1/models/nope:predict", j({"instances": ["a"]}), 404, "Latest(nope)", None),
        "rest_wrong_input_name": (p, j({"instances": [{"txt": "a"}]}), 400, "named input: txt", None),
        "rest_wrong_dtype": (p, j({"instances": [1, 2]}), 400, "not of expected type: string", None),
        "rest_oversized": (p, j({"instances": ["x" * MAX_BYTES]}), 413, "max_request_bytes", None),
        "rest_too_many_rows": (p, j({"instances": ["a"] * (MAX_ROWS + 1)}), 400, "max_batch_rows", None),
        "rest_empty_batch": (p, j({"instances": []}), 400, "No values in 'instances' array", None),
    }
    grpc_cases = {
        "grpc_row": (_grpc_request(["ab", "xyz"]), G.OK, "", "texts:ab,xyz"),
        "grpc_beam_pinned_v1": (_grpc_request(signature="beam_search", version=1), G.OK, "", "v1"),
        "grpc_invalid_utf8": (_grpc_request([b"\xffab"]), G.OK, "", "replacement"),
        "grpc_long_10k": (_grpc_request([LONG]), G.OK, "", "long"),
        "grpc_empty_batch": (_grpc_request([]), G.OK, "", "empty"),
        "grpc_malformed_proto": (b"\xff\xff\xff\x01", G.INTERNAL, "deserializing", None),
        "grpc_unknown_signature": (_grpc_request(signature="nope"), G.FAILED_PRECONDITION,
                                   'signature key "nope" not found', None),
        "grpc_unknown_version": (_grpc_request(version=99), G.NOT_FOUND, "Specific(stub, 99)", None),
        "grpc_unknown_model": (_grpc_request(name="nope"), G.NOT_FOUND, "Latest(nope)", None),
        "grpc_wrong_input_name": (_grpc_request(key="txt"), G.INVALID_ARGUMENT, "Sent extra: {txt}", None),
        "grpc_wrong_dtype": (_grpc_request(values=[1.0]), G.INVALID_ARGUMENT, "to be string", None),
        "grpc_oversized": (_grpc_request(["x" * MAX_BYTES]), G.RESOURCE_EXHAUSTED, "", None),
        "grpc_too_many_rows": (_grpc_request(["a"] * (MAX_ROWS + 1)), G.INVALID_ARGUMENT,
                               "max_batch_rows", None),
    }
    cases = {k: ("rest",) + v for k, v in rest.items()}
    cases.update({k: ("grpc", None) + v for k, v in grpc_cases.items()})
    return cases


class Load:
    """Shared state of one load run; ``run_one`` is called from CLIENTS threads."""

    def __init__(self, server, base, staged):
        from tensorflow_serving.apis import predict_pb2

        self.server, self.base, self.staged = server, base, staged
        self.cases = _cases()
        self.schedule = sorted(self.cases)
        self.response_cls = predict_pb2.PredictResponse
        self.channel = grpc.insecure_channel(server.grpc_target, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
        self.predict = self.channel.unary_unary(PREDICT)  # raw bytes in and out
        self.local = threading.local()
        self.lock = threading.Lock()
        self.done = 0
        self.failures, self.seen, self.rss = [], {}, {}
        self.rolled_out_at = self.first_v2_at = None

    def session(self):
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def send(self, protocol, path, body):
        """-> (status, message, decoded outputs or None)."""
        if protocol == "rest":
            r = self.session().post(self.server.rest_url + path, data=body, timeout=60,
                                    headers={"Content-Type": "application/json"})
            doc = r.json()
            return r.status_code, doc.get("error", ""), doc if r.status_code == 200 else None
        try:
            raw = self.predict(body, timeout=60)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or "", None
        import tensorflow as tf

        response = self.response_cls.FromString(raw)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        texts = [t.decode("utf-8") for t in outputs["text"]]
        return G.OK, "", {"texts": texts, "scores": outputs["scores"].tolist()}

    def check_output(self, check, doc):
        if "predictions" in doc:
            rows = doc["predictions"]
            texts, scores = [r["text"] for r in rows], [r["scores"] for r in rows]
        elif "outputs" in doc:
            texts, scores = doc["outputs"]["text"], doc["outputs"]["scores"]
        else:
            texts, scores = doc["texts"], doc["scores"]
        if check.startswith("texts:") or check == "long":
            inputs = [LONG] if check == "long" else check[6:].split(",")
            versions = {1 if t == expected_text(s) else 2 if t == expected_text(s, upper=True) else 0
                        for t, s in zip(texts, inputs)}
            assert versions in ({1}, {2}), (inputs, texts)
            if versions == {2} and self.first_v2_at is None:
                self.first_v2_at = time.monotonic()
            assert versions == {1} or self.rolled_out_at is not None, "v2 before it was rolled out"
        elif check == "v1":
            assert texts == ["ba"], texts
        elif check == "beam":
            assert texts in (["ba"], ["BA"]) and scores == [-2.5], (texts, scores)
        elif check == "replacement":
            assert texts[0].lower() == "ba\ufffd", texts
        elif check == "empty":
            assert texts == [], texts

    def run_one(self, index, deadline):
        if time.monotonic() > deadline:
            return
        name = self.schedule[index % len(self.schedule)]
        protocol, path, body, want_status, want_message, check = self.cases[name]
        try:
            status, message, doc = self.send(protocol, path, body)
            assert status == want_status and want_message in message, (status, message[:200])
            if check is not None:
                self.check_output(check, doc)
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            with self.lock:
                self.failures.append((name, repr(exc)[:300]))
        self.completed()

    def completed(self):
        with self.lock:
            self.done += 1
            done = self.done
        if done == EARLY:
            self.rss["early"] = self.server.rss_kb()
        if done == ROLLOUT_AT:
            self.rolled_out_at = time.monotonic()  # set first: no v2 answer can precede it
            os.rename(self.staged, os.path.join(self.base, "2"))


@pytest.fixture
def load_server(tmp_path):
    base, staging = tmp_path / "base", tmp_path / "staging"
    base.mkdir()
    staging.mkdir()
    build_stub(str(base / "1"), warmup=True)
    build_stub(str(staging / "2"), upper=True)  # built before the run, renamed in midway
    server = ServerProcess(base, "stub", "--poll_seconds", "0.5", "--max_request_bytes", MAX_BYTES,
                           "--max_batch_rows", MAX_ROWS, "--grpc_max_workers", CLIENTS)
    yield server, str(base), str(staging / "2")
    server.kill()


def test_load_faults_rollout_and_memory(load_server):
    server, base, staged = load_server
    load = Load(server, base, staged)
    start = time.monotonic()
    deadline = start + TIME_LIMIT
    counter = itertools.count()

    def client():
        for index in iter(lambda: next(counter), None):
            if index >= TOTAL or time.monotonic() > deadline:
                return
            load.run_one(index, deadline)

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    elapsed = time.monotonic() - start
    load.rss["end"] = server.rss_kb()
    load.channel.close()
    rate = load.done / elapsed
    print(f"\n{load.done} requests in {elapsed:.1f}s ({rate:.0f}/s), {len(load.schedule)} kinds, "
          f"RSS after {EARLY}: {load.rss.get('early')} kB, after {load.done}: {load.rss['end']} kB")
    assert load.done == TOTAL, f"only {load.done} of {TOTAL} requests within {TIME_LIMIT}s"
    assert not load.failures, f"{len(load.failures)} failures, e.g. {load.failures[:5]}"
    assert load.rolled_out_at is not None and load.first_v2_at is not None, "v2 never served"
    assert load.first_v2_at - load.rolled_out_at < 30
    with requests.post(server.rest_url + "/v1/models/stub:predict", json={"instances": ["ab"]},
                       timeout=30) as r:  # after the run: the new version is the default
        assert r.json()["predictions"][0]["text"] == "BA"
    growth = load.rss["end"] / load.rss["early"] - 1
    assert growth < 0.10, f"RSS grew {growth:.1%} from request {EARLY} to {TOTAL}"
