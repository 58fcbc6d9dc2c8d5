"""Resuming after a crash: SIGKILL `tfseq2seq train` mid-epoch, run the same command
again, and it continues from the last backup instead of starting over."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(ROOT, "configs", "smoke.yaml")
TIMEOUT = 300  # per training process
SETTINGS = ["training.epochs=3", "training.steps_per_epoch=10", "training.backup_every_steps=3",
            "data.dev_limit=8"]


def _command(run_dir):
    args = [sys.executable, "-m", "tfseq2seq.cli.app", "train", "--config", SMOKE, "--run-dir", run_dir]
    for setting in SETTINGS:
        args += ["--set", setting]
    return args


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def _backup_state(run_dir):
    try:
        with open(os.path.join(run_dir, "backup", "state.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _kill_mid_epoch(run_dir, log):
    """Starts training and SIGKILLs it once a mid-epoch backup of epoch 2 exists."""
    proc = subprocess.Popen(_command(run_dir), cwd=ROOT, env=_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            state = _backup_state(run_dir)
            if state and state["epoch"] == 1 and state["step"] > 0:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "training ended before it could be killed"
        state = _backup_state(run_dir)
        assert state and state["epoch"] == 1 and state["step"] > 0, f"no mid-epoch backup: {state}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        return _backup_state(run_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _history(run_dir):
    with open(os.path.join(run_dir, "history.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("plain") / "run")
    result = subprocess.run(_command(run_dir) + ["--quiet"], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    return _history(run_dir)


def test_sigkill_mid_epoch_then_resume(tmp_path, uninterrupted):
    run_dir = str(tmp_path / "run")
    with open(tmp_path / "first.log", "wb") as log:
        state = _kill_mid_epoch(run_dir, log)
    assert os.path.exists(os.path.join(run_dir, "model.keras"))  # the best of epoch 1
    assert not [f for f in os.listdir(run_dir) if f.startswith(".tmp")]

    result = subprocess.run(_command(run_dir), cwd=ROOT, env=_env(), capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert (f"resuming from {os.path.join(run_dir, 'backup')}: epoch 2/3, step {state['step']}, "
            f"optimizer step {state['iterations']}") in out
    assert "Epoch 1/3" not in out and "Epoch 2/3" in out and "Epoch 3/3" in out
    assert not os.path.exists(os.path.join(run_dir, "backup")), "backup kept after training"

    history = _history(run_dir)
    assert len(history["loss"]) == 3 and len(history["val_loss"]) == 3
    # ε comes from optimizer.iterations: epoch 3 covers the same steps 20..29 in both
    # runs only if the step counter was restored (it would restart at 0 otherwise).
    assert history["teacher_forcing_p"][2] == pytest.approx(uninterrupted["teacher_forcing_p"][2],
                                                            abs=1e-4)
    assert history["loss"][2] == pytest.approx(uninterrupted["loss"][2], rel=0.25)
    assert history["val_loss"][2] == pytest.approx(uninterrupted["val_loss"][2], rel=0.25)

    from tfseq2seq.inference.translator import Translator
    from tfseq2seq.run_dir import load_run

    run = load_run(run_dir)
    outputs = Translator(run).translate(["hello"])
    assert outputs[0].source == "hello" and isinstance(outputs[0].text, str)


def test_backup_of_a_different_model_is_reported(tmp_path):
    import keras
    import numpy as np

    from tfseq2seq.model import Seq2Seq
    from tfseq2seq.training.backup import TrainingBackup

    def model(units):
        m = Seq2Seq(12, 12, embedding_dim=4, units=units)
        m.compile(optimizer=keras.optimizers.Adam())
        return m

    small, x = model(8), np.random.default_rng(0).integers(1, 12, (4, 5))
    small.fit((x, x), x, epochs=1, batch_size=2, verbose=0)
    backup = TrainingBackup(str(tmp_path / "backup"), every_steps=1)
    backup.set_model(small)
    backup.on_epoch_end(0, {"loss": 1.0})
    assert backup.restore(model(8)) == (1, 0)
    with pytest.raises(ValueError, match="(?s)does not fit this model.*delete the backup"):
        backup.restore(model(16))
    (tmp_path / "backup" / "state.json").write_text("{trunc")
    with pytest.raises(ValueError, match="unreadable backup state"):
        backup.restore(model(8))


def test_backup_keeps_two_generations_and_restores_the_agreed_one(tmp_path):
    """Workers of a multi-worker run can be one backup apart after a crash: each keeps the
    generation before its newest, and ``restore(agree=...)`` loads the one at the agreed
    optimizer step (weights, epoch/step, history), or says clearly that none fits."""
    import keras
    import numpy as np

    from tfseq2seq.model import Seq2Seq
    from tfseq2seq.training.backup import TrainingBackup

    def model():
        m = Seq2Seq(12, 12, embedding_dim=4, units=8)
        m.compile(optimizer=keras.optimizers.Adam())
        return m

    trained, x = model(), np.random.default_rng(0).integers(1, 12, (4, 5))
    directory = tmp_path / "backup"
    backup = TrainingBackup(str(directory), every_steps=1)
    backup.set_model(trained)
    backup.on_train_begin()
    snapshots = {}  # optimizer step -> (first weight, (epoch, step))
    for epoch in range(3):
        trained.fit((x, x), x, epochs=1, batch_size=2, verbose=0)
        backup.on_epoch_end(epoch, {"loss": float(epoch)})
        snapshots[int(trained.optimizer.iterations.numpy())] = (
            trained.weights[0].numpy().copy(), (epoch + 1, 0))
    newest, previous, oldest = sorted(snapshots, reverse=True)
    weights = sorted(f.name for f in directory.glob("*.weights.h5"))
    assert weights == sorted([f"state-{newest}-3.weights.h5", f"state-{previous}-2.weights.h5"])

    def restored(agreed):
        fresh, asked = model(), []
        backup_now = TrainingBackup(str(directory))
        position = backup_now.restore(fresh, agree=lambda mine: asked.append(mine) or agreed)
        return fresh, position, backup_now.history, asked

    fresh, position, history, asked = restored(previous)  # another worker is one behind
    assert asked == [newest] and position == snapshots[previous][1]
    np.testing.assert_array_equal(fresh.weights[0].numpy(), snapshots[previous][0])
    assert int(fresh.optimizer.iterations.numpy()) == previous
    assert history["loss"] == [0.0, 1.0] and len(history["wall_seconds"]) == 2
    assert 0 < history["wall_seconds"][0] <= history["wall_seconds"][1]
    fresh, position, _, _ = restored(newest)
    assert position == (3, 0) and int(fresh.optimizer.iterations.numpy()) == newest
    np.testing.assert_array_equal(fresh.weights[0].numpy(), snapshots[newest][0])
    assert restored(0)[1] == (0, 0)  # a worker without a backup: everyone starts over
    with pytest.raises(ValueError, match=rf"cannot agree on a backup.*all have optimizer step "
                                         rf"{oldest}; this one has {newest}, {previous}"):
        restored(oldest)
