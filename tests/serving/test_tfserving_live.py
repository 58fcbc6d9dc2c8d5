"""Live test against the real TensorFlow Serving (``tensorflow_model_server``).

Runs when either
- ``tensorflow_model_server`` is on PATH: it is started on free loopback ports
  against a freshly exported tiny real model, with serving/'s models.config
  (base_path rewritten to the temporary export), batching_parameters.txt and
  monitoring.config -- so the configs are checked by the real binary too; or
- ``TFSERVING_REST_URL`` and/or ``TFSERVING_GRPC_TARGET`` are set: that server is
  queried; it must serve ``TFSERVING_MODEL_NAME`` (default ``g2p``) from
  ``TFSERVING_MODEL_BASE_PATH`` (a local copy of its base path, default
  ``export/g2p``), whose newest version is the reference.

Both signatures are queried through ``RestClient`` and ``GrpcClient`` and compared
with the same SavedModel loaded by ``tf.saved_model.load``.  Otherwise every test
is skipped with the reason (shown by ``pytest -rs``, the project default).
Note: tensorflow_model_server binds its ports on all interfaces (it has no bind
address flag); the test only connects through 127.0.0.1.
"""

import os
import shutil
import socket
import subprocess
import time
import types

import numpy as np
import pytest
import requests

pytestmark = pytest.mark.tfserving

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING = os.path.join(REPO, "serving")
TEXTS = ["hello world", "abc", "", "zz top", "早上好 👍", b"\xffhi"]
SIGNATURES = ("serving_default", "beam_search")


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _export_tiny_model(base):
    """A random-weight Seq2Seq exported as ``base/1`` (as tests/test_export.py does)."""
    import keras

    from tfseq2seq import Seq2Seq, text
    from tfseq2seq.export import signatures as export

    keras.utils.set_random_seed(0)
    tokenizer = text.CharTokenizer()
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = text.Vocabulary(text.RESERVED_TOKENS + tuple(letters) + ("▁", "早", "上", "好"))
    vocab_path = vocab.save(os.path.join(os.path.dirname(base), "vocab.txt"))
    model = Seq2Seq(len(vocab), len(vocab), embedding_dim=8, units=16)
    return export.export_model(model, tokenizer, tokenizer, vocab_path, vocab_path, base,
                               max_source_len=16, beam_width=3)


def _write_model_config(path, base_path, name):
    """serving/models.config with its base_path pointed at ``base_path``."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(os.path.join(SERVING, "models.config"), encoding="utf-8") as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    config.model_config_list.config[0].base_path = base_path
    config.model_config_list.config[0].name = name
    with open(path, "w", encoding="utf-8") as f:
        f.write(text_format.MessageToString(config))


def _wait_available(rest_url, name, proc, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tensorflow_model_server exited with {proc.returncode}")
        try:
            r = requests.get(f"{rest_url}/v1/models/{name}", timeout=2)
            if r.ok and any(s["state"] == "AVAILABLE" for s in r.json()["model_version_status"]):
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"model {name} not AVAILABLE after {timeout}s")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    binary = shutil.which("tensorflow_model_server")
    rest_url = os.environ.get("TFSERVING_REST_URL")
    grpc_target = os.environ.get("TFSERVING_GRPC_TARGET")
    if rest_url or grpc_target:
        name = os.environ.get("TFSERVING_MODEL_NAME", "g2p")
        base = os.environ.get("TFSERVING_MODEL_BASE_PATH", os.path.join(REPO, "export", name))
        from tfseq2seq.export.signatures import existing_versions

        versions = existing_versions(base)
        if not versions:
            pytest.skip(f"TFSERVING_* is set but {base} holds no version to compare with "
                        "(set TFSERVING_MODEL_BASE_PATH to a copy of the served base path)")
        yield types.SimpleNamespace(rest=rest_url, grpc=grpc_target, name=name,
                                    path=os.path.join(base, str(versions[-1])), log=None)
        return
    if binary is None:
        pytest.skip("tensorflow_model_server is not on PATH and TFSERVING_REST_URL / "
                    "TFSERVING_GRPC_TARGET are not set (TF Serving is not installable here)")
    root = tmp_path_factory.mktemp("tfserving")
    name, base = "g2p", str(root / "export" / "g2p")
    path = _export_tiny_model(base)
    _write_model_config(str(root / "models.config"), base, name)
    grpc_port, rest_port = _free_port(), _free_port()
    log = open(root / "server.log", "w+")
    proc = subprocess.Popen(
        [binary, f"--port={grpc_port}", f"--rest_api_port={rest_port}",
         f"--model_config_file={root / 'models.config'}", "--enable_batching=true",
         f"--batching_parameters_file={os.path.join(SERVING, 'batching_parameters.txt')}",
         f"--monitoring_config_file={os.path.join(SERVING, 'monitoring.config')}",
         "--file_system_poll_wait_seconds=1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        rest_url = f"http://127.0.0.1:{rest_port}"
        _wait_available(rest_url, name, proc)
        yield types.SimpleNamespace(rest=rest_url, grpc=f"127.0.0.1:{grpc_port}", name=name,
                                    path=path, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def reference(live):
    import tensorflow as tf

    loaded = tf.saved_model.load(live.path)
    inputs = tf.constant([t.encode() if isinstance(t, str) else t for t in TEXTS], tf.string)
    return {sig: {k: v.numpy() for k, v in loaded.signatures[sig](text=inputs).items()}
            for sig in SIGNATURES}


def _assert_rows_match(rows, expected):
    assert len(rows) == len(TEXTS)
    for i, row in enumerate(rows):
        n = int(expected["lengths"][i])
        assert row["lengths"] == n
        assert row["text"] == expected["text"][i].decode("utf-8", "replace")
        assert row["tokens"] == [t.decode("utf-8", "replace") for t in expected["tokens"][i][:n]]
        assert row["token_ids"] == expected["token_ids"][i][:n].tolist()
        np.testing.assert_allclose(row["scores"], expected["scores"][i], rtol=1e-5, atol=1e-6)
        if n == 0:  # empty input: no attention rows
            assert row["attention"] == []
            continue
        attention = np.array(row["attention"], np.float32)
        want = expected["attention"][i, :n]
        np.testing.assert_allclose(attention[:, :want.shape[1]], want, atol=1e-6)


@pytest.mark.parametrize("signature", SIGNATURES)
@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_live_predict_matches_saved_model(live, reference, protocol, signature):
    from tfseq2seq.serving.client import GrpcClient, RestClient

    target = getattr(live, protocol)
    if target is None:
        pytest.skip(f"no {protocol} endpoint given (TFSERVING_{protocol.upper()}_* unset)")
    client_cls = RestClient if protocol == "rest" else GrpcClient
    with client_cls(target, live.name, timeout=60) as client:
        rows = client.translate(TEXTS, signature=signature)
        status = client.status()
    _assert_rows_match(rows, reference[signature])
    version = os.path.basename(live.path)
    assert {"version": version, "state": "AVAILABLE"}.items() <= \
        status["model_version_status"][0].items()


def test_live_prometheus_metrics(live):
    if live.log is None:
        pytest.skip("metrics are only checked on the server this test starts")
    r = requests.get(f"{live.rest}/monitoring/prometheus/metrics", timeout=10)
    assert r.status_code == 200 and ":tensorflow:" in r.text
