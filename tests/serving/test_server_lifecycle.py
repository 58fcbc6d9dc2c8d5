"""tfseq2seq.serving's life cycle with tfseq2seq.serving.client: concurrent requests and
batching, graceful stop, hot reload of versions, and the server as a process.

Everything binds 127.0.0.1 only; every loop is bounded in count and time.
"""

import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
import tensorflow as tf

from tfseq2seq.serving.app import main, serve
from tfseq2seq.serving.client import GrpcClient, RestClient, ServingError

from server_fixtures import build_store, expected_text

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("stub_models"))


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
    from tfseq2seq.serving import batching

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


def _record_serve_calls(monkeypatch):
    """Replaces ``app.serve`` by a recorder of its keyword arguments whose handle returns
    at once, so ``main`` and ``tfseq2seq serve`` can be run for their option parsing."""
    from tfseq2seq.serving import app

    calls = []

    class FakeHandle:  # what serve() returns, minus the serving
        manager = type("M", (), {"versions": staticmethod(lambda: [1])})()
        grpc_target = rest_url = None

        def run_forever(self, grace=5.0):
            pass

    def fake_serve(*args, **kwargs):
        calls.append(kwargs)
        return FakeHandle()

    monkeypatch.setattr(app, "serve", fake_serve)
    return calls


def _assert_usage_errors(capsys, message, *argvs):
    """Each argv (``python -m tfseq2seq.serving.app``'s, or ``tfseq2seq serve ...``) exits
    with status 2 and ``message`` on stderr."""
    from tfseq2seq.cli.app import main as cli_main

    capsys.readouterr()
    for argv in argvs:
        with pytest.raises(SystemExit) as exit_info:
            (cli_main if argv[0] == "serve" else main)(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err, argv


def test_num_batch_threads_option(store, monkeypatch, capsys):
    from tfseq2seq.cli.app import main as cli_main

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

    calls = _record_serve_calls(monkeypatch)
    required = ["--model_name", "stub", "--model_base_path", str(store / "base")]
    assert main(required + ["--enable_batching", "--num_batch_threads", "2"]) == 0
    assert main(required) == 0
    cli_main(["serve", "--model-base-path", str(store / "base"), "--model-name", "stub",
              "--enable-batching", "--num-batch-threads", "4"])
    cli_main(["serve", "--model-base-path", str(store / "base"), "--model-name", "stub"])
    seen = [kwargs["num_batch_threads"] for kwargs in calls]
    assert seen == [2, None, 4, None]  # None: the Batcher's default, one thread per CPU
    _assert_usage_errors(capsys, "must be >= 1, got ", required + ["--num_batch_threads", "0"],
                         ["serve", *required, "--num-batch-threads", "-2"])
    with pytest.raises(SystemExit):
        main(required + ["--num_batch_threads", "x"])
    assert "invalid int value: 'x'" in capsys.readouterr().err


def test_thread_pool_options(store, monkeypatch, capsys):
    """TF Serving's --tensorflow_{intra,inter}_op_parallelism reach serve(); in a process
    where TensorFlow already runs (this one) a different size is refused, not ignored.
    That they take effect in a fresh process is checked by ``test_sigterm_stops_cleanly``."""
    from tfseq2seq.cli.app import main as cli_main

    running = tf.config.threading.get_intra_op_parallelism_threads()
    with pytest.raises(ValueError, match=rf"tensorflow_intra_op_parallelism={running + 1} "
                                         r"cannot take effect: TensorFlow already runs"):
        serve(str(store / "base"), "stub", port=None, rest_api_port=None, poll_seconds=0,
              intra_op_parallelism=running + 1)
    with pytest.raises(ValueError, match=r"tensorflow_inter_op_parallelism must be an integer "
                                         r">= 0, got -1"):
        serve(str(store / "base"), "stub", port=None, rest_api_port=None, poll_seconds=0,
              inter_op_parallelism=-1)
    handle = serve(str(store / "base"), "stub", port=None, rest_api_port=None, poll_seconds=0,
                   intra_op_parallelism=running, inter_op_parallelism=0)  # unchanged: fine
    handle.stop(grace=1)

    calls = _record_serve_calls(monkeypatch)
    required = ["--model_name", "stub", "--model_base_path", str(store / "base")]
    assert main(required + ["--tensorflow_intra_op_parallelism", "1",
                            "--tensorflow_inter_op_parallelism", "3"]) == 0
    assert main(required) == 0
    cli_main(["serve", *required, "--intra-op-parallelism", "2"])
    cli_main(["serve", *required, "--tensorflow_inter_op_parallelism", "4"])
    seen = [(kw["intra_op_parallelism"], kw["inter_op_parallelism"]) for kw in calls]
    assert seen == [(1, 3), (0, 0), (2, 0), (0, 4)]
    _assert_usage_errors(capsys, "must be >= 0, got -",
                         required + ["--tensorflow_intra_op_parallelism", "-1"],
                         ["serve", *required, "--inter-op-parallelism", "-3"])


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
    code = ("import sys\n"
            "from tfseq2seq.serving.client import GrpcClient, RestClient\n"
            "print(sorted({'tensorflow', 'keras', 'tfseq2seq.model'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_main_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--model_base_path" in capsys.readouterr().out


@pytest.fixture(scope="module", autouse=True)
def app_process(store):
    """``python -m tfseq2seq.serving.app`` in a subprocess, started with the module's first
    test so that its (slow) TensorFlow import overlaps the in-process tests."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfseq2seq.serving.app", "--model_name", "stub",
         "--model_base_path", str(store / "base"), "--port", "0", "--rest_api_port", "0",
         "--poll_seconds", "0", "--log_level", "WARNING",
         "--tensorflow_intra_op_parallelism", "1", "--tensorflow_inter_op_parallelism", "3"],
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
    # the thread-pool flags took effect (TensorFlow had not run anything before them)
    assert " threads intra-op=1 inter-op=3 " in lines[0], lines
    rest_url = lines[0].split("rest=")[1].strip()
    assert RestClient(rest_url, "stub").translate(["ab"])[0]["text"] == "BA"
    app_process.send_signal(signal.SIGTERM)
    assert app_process.wait(timeout=30) == 0
    assert "stopped" in app_process.stdout.read()


def test_unloading_a_version_releases_it_at_once(tmp_path):
    """The manager freezes the garbage collector's view after each load (so collections
    skip the loaded models) and collects on every change, so a removed version's
    objects, reference cycles included, are freed when it is unloaded, not leaked by
    the freeze and not left for some later collection."""
    import gc
    import weakref

    from tfseq2seq.serving.models import ModelManager

    class Loaded:  # stands in for a loaded SavedModel: part of a reference cycle
        def __init__(self, version):
            self.version, self.me = version, self

    def make_version(v):
        os.makedirs(tmp_path / str(v))
        (tmp_path / str(v) / "saved_model.pb").write_bytes(b"")

    refs = {}

    def loader(path, version):
        refs[version] = weakref.ref(servable := Loaded(version))
        return servable

    make_version(1)
    manager = ModelManager(str(tmp_path), "m", poll_seconds=0, loader=loader)
    assert manager.poll_once() == [1]
    assert gc.get_freeze_count() > 0  # version 1 is frozen
    make_version(2)
    shutil.rmtree(tmp_path / "1")
    gc.disable()  # only the manager may collect from here on
    try:
        assert manager.poll_once() == [2]
        assert refs[1]() is None and refs[2]() is not None
    finally:
        gc.enable()
        gc.unfreeze()
