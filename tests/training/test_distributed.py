"""Distributed training: strategy selection, chief detection, and a real two-worker run
of configs/smoke.yaml with MultiWorkerMirroredStrategy on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tfseq2seq.training import distributed

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(ROOT, "configs", "smoke.yaml")
TIMEOUT = 480  # seconds for the whole two-worker run; the workers are killed after it
SETTINGS = ["training.epochs=2", "training.steps_per_epoch=6", "training.backup_every_steps=4",
            "data.dev_limit=8"]


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


@pytest.mark.parametrize("tf_config,chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_chief_detection_and_worker_dirs(monkeypatch, tmp_path, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    run = str(tmp_path / "run")
    assert distributed.is_chief() is chief
    written = distributed.worker_run_dir(run)
    assert (written == run) is chief
    if not chief:  # private, stable per task, and removed by cleanup
        assert written == distributed.worker_run_dir(run) and not written.startswith(run)
        os.makedirs(written)
        distributed.cleanup_worker_dir(run, written)
        assert not os.path.exists(written)
    os.makedirs(run)
    distributed.cleanup_worker_dir(run, run)  # never deletes the chief's run directory
    assert os.path.isdir(run)


def test_bad_strategy_and_missing_tf_config_are_reported(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="must be one of"):
        distributed.make_strategy("tpu")
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        distributed.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distributed.is_chief()


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _train_command(run_dir, *extra):
    args = [sys.executable, "-m", "tfseq2seq.cli.app", "train", "--config", SMOKE,
            "--run-dir", run_dir, "--quiet", *extra]
    for setting in SETTINGS:
        args += ["--set", setting]
    return args


def _run_workers(run_dir, ports):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    procs = [subprocess.Popen(_train_command(run_dir, "--strategy", "multi_worker"),
                              env={**env, "TF_CONFIG": _tf_config(ports, i)}, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(len(ports))]
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:  # on a timeout or any failure, leave no worker behind
            if p.poll() is None:
                p.kill()
                p.wait()
    return [p.returncode for p in procs], outputs


def test_two_workers_train_like_one_process(tmp_path, monkeypatch):
    run_dir = str(tmp_path / "mw")
    codes, outputs = _run_workers(run_dir, _free_ports(2))
    assert codes == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    assert not os.path.exists(distributed.worker_run_dir(run_dir)), "worker temp dir left"
    assert not os.path.exists(os.path.join(run_dir, "backup"))

    from tfseq2seq.inference.translator import Translator
    from tfseq2seq.run_dir import load_run

    outputs = Translator(load_run(run_dir)).translate(["hello", "world"])
    assert [t.source for t in outputs] == ["hello", "world"]  # 12 steps: the text may be empty
    assert all(isinstance(t.text, str) and len(t.source_tokens) == 5 for t in outputs)
    distributed_loss = json.load(open(os.path.join(run_dir, "history.json")))["loss"]

    single = str(tmp_path / "single")
    monkeypatch.delenv("TF_CONFIG")
    result = subprocess.run(_train_command(single), cwd=ROOT, capture_output=True, text=True,
                            timeout=TIMEOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    single_loss = json.load(open(os.path.join(single, "history.json")))["loss"]
    assert len(distributed_loss) == len(single_loss) == 2
    for d, s in zip(distributed_loss, single_loss):  # same global batch, same step count
        assert abs(d - s) < 0.15 * s, (distributed_loss, single_loss)


MIRRORED_ON_TWO_CPUS = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tfseq2seq.training import train as training
from tfseq2seq.config import load_config
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = load_config(sys.argv[1], sys.argv[3:])
print(json.dumps(training._train(config, sys.argv[2], strategy, 0)))
"""


def test_mirrored_with_two_replicas_trains(tmp_path):
    """What ``--strategy mirrored`` does on a 2-GPU machine, on two logical CPUs; the
    loss stays a per-token mean (about ln(vocab) ≈ 3.8 at the start), not a sum of replicas."""
    args = [sys.executable, "-c", MIRRORED_ON_TWO_CPUS, SMOKE, str(tmp_path / "m"),
            "training.epochs=1", "training.steps_per_epoch=4", "data.dev_limit=8"]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < history["loss"][0] < 4.5 and os.path.exists(tmp_path / "m" / "model.keras")


def _worker_backup_state(path):
    try:
        with open(os.path.join(path, "state.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@pytest.mark.slow
def test_two_workers_one_backup_apart_resume_together(tmp_path, monkeypatch):
    """A crash between two workers' saves leaves their newest backups one generation
    apart; restarted, they agree on the older one (each keeps two) instead of entering
    the collectives at different steps, and finish the run."""
    import signal
    import time

    run_dir, ports = str(tmp_path / "mw"), _free_ports(2)
    settings = ["training.epochs=3", "training.steps_per_epoch=12", "training.backup_every_steps=2",
                "data.dev_limit=8"]
    command = [sys.executable, "-m", "tfseq2seq.cli.app", "train", "--config", SMOKE, "--run-dir",
               run_dir, "--quiet", "--strategy", "multi_worker"]
    for setting in settings:
        command += ["--set", setting]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    monkeypatch.setenv("TF_CONFIG", _tf_config(ports, 1))
    backups = [os.path.join(run_dir, "backup"),
               os.path.join(distributed.worker_run_dir(run_dir), "backup")]

    def start():
        return [subprocess.Popen(command, env={**env, "TF_CONFIG": _tf_config(ports, i)},
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True) for i in range(2)]

    procs = start()
    try:  # kill both once each has two generations, in the first epoch
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and all(p.poll() is None for p in procs):
            states = [_worker_backup_state(b) for b in backups]
            if all(s and s.get("previous") for s in states):
                break
            time.sleep(0.05)
        for p in procs:
            p.send_signal(signal.SIGKILL)
        outputs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    states = [_worker_backup_state(b) for b in backups]
    assert all(s and s.get("previous") for s in states), (states, [o[-2000:] for o in outputs])
    if states[0]["iterations"] == states[1]["iterations"]:  # make worker 1 one save behind
        with open(os.path.join(backups[1], "state.json"), "w", encoding="utf-8") as f:
            json.dump(states[1]["previous"], f)
    newest = [_worker_backup_state(b)["iterations"] for b in backups]
    assert newest[0] != newest[1], newest
    agreed = min(newest)

    procs = start()
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    for output in outputs:
        assert f"optimizer step {agreed}\n" in output, output[-2000:]
    assert len(json.load(open(os.path.join(run_dir, "history.json")))["loss"]) == 3
