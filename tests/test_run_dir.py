"""Corrupt or mismatched run directories are reported clearly, and every file the tool
writes is written under a temporary name and renamed (a crash leaves the old file)."""

import builtins
import json
import os
import shutil

import pytest
import yaml

from tfseq2seq import run_dir as rd
from tfseq2seq.config import load_config
from tfseq2seq.run_dir import RunDirError, load_run

from smoke_runs import train_smoke_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "configs", "smoke.yaml")
FILES = (rd.CONFIG, rd.SOURCE_VOCAB, rd.TARGET_VOCAB, rd.TOKENIZERS, rd.MODEL)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_smoke_run(tmp_path_factory)


@pytest.fixture
def copy(trained, tmp_path):
    path = str(tmp_path / "copy")
    shutil.copytree(trained, path)
    return path


def _edit_config(path, section, key, value):
    file = os.path.join(path, rd.CONFIG)
    data = yaml.safe_load(open(file, encoding="utf-8"))
    data[section][key] = value
    open(file, "w", encoding="utf-8").write(yaml.safe_dump(data))


def test_complete_run_dir_loads(trained):
    run = load_run(trained)
    assert run.model.source_vocab_size == len(run.source_vocab)
    assert not os.path.exists(os.path.join(trained, "backup"))
    assert not [f for f in os.listdir(trained) if f.startswith(".tmp")]


@pytest.mark.parametrize("name", FILES)
def test_missing_file_is_named(copy, name):
    os.remove(os.path.join(copy, name))
    with pytest.raises(RunDirError, match=f"missing {name}"):
        load_run(copy)


def test_vocabulary_of_another_model_is_detected(copy):
    vocab = os.path.join(copy, rd.TARGET_VOCAB)
    open(vocab, "a", encoding="utf-8").write("EXTRA1\nEXTRA2\n")
    with pytest.raises(RunDirError, match="target.vocab has .* tokens but the model was built for"):
        load_run(copy)


@pytest.mark.parametrize("key,value", [("units", 64), ("cell", "lstm"), ("attention", "dot"),
                                       ("embedding_dim", 8), ("bidirectional", True)])
def test_config_of_another_model_is_detected(copy, key, value):
    _edit_config(copy, "model", key, value)
    with pytest.raises(RunDirError, match=f"different model.*model.{key}: config"):
        load_run(copy)


@pytest.mark.parametrize("name,content,match", [
    (rd.MODEL, None, "cannot load model"),  # truncated: the first half of the file
    (rd.MODEL, b"", "cannot load model"),
    (rd.CONFIG, b"model: [unclosed", "unreadable run files"),
    (rd.CONFIG, b"model:\n  unitz: 3\n", "model.unitz"),
    (rd.TOKENIZERS, b'{"source": {', "unreadable run files"),
    (rd.TOKENIZERS, b'{"source": {"kind": "nope"}, "target": {}}', "unreadable run files"),
    (rd.SOURCE_VOCAB, b"\xff\xfe\x00bad", "unreadable run files"),
])
def test_corrupt_file_is_reported(copy, name, content, match):
    path = os.path.join(copy, name)
    if content is None:
        data = open(path, "rb").read()
        content = data[: len(data) // 2]
    open(path, "wb").write(content)
    with pytest.raises(RunDirError, match=match):
        load_run(copy)


def test_training_into_a_run_dir_of_another_model_is_refused(copy):
    from tfseq2seq.training.train import train

    config = load_config(SMOKE, ["model.units=48", "training.epochs=1"])
    with pytest.raises(RunDirError, match="different data/model config"):
        train(config, copy, verbose=0)


# ----------------------------------------------------------------- atomic writes
class _Crash(Exception):
    pass


def _crash_mid_write(monkeypatch, module):
    """Makes files opened by ``module`` write half of their text, then crash."""
    real_open = open

    class HalfFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise _Crash("disk gone")

    monkeypatch.setattr(module, "open", lambda *a, **k: HalfFile(real_open(*a, **k)), raising=False)


@pytest.mark.parametrize("write", ["vocab", "config", "tokenizers", "report", "history"])
def test_crash_mid_write_leaves_the_old_file(copy, monkeypatch, write):
    from tfseq2seq import text
    from tfseq2seq.config import save_config
    from tfseq2seq.inference.evaluation import write_report
    from tfseq2seq.util import files

    run = load_run(copy, with_model=False)
    report = os.path.join(copy, "eval_dev.json")
    history = os.path.join(copy, "history.json")
    open(report, "w").write('{"old": true}')
    writers = {
        "vocab": (run.source_vocab.path, lambda: run.target_vocab.save(run.source_vocab.path)),
        "config": (run.file(rd.CONFIG), lambda: save_config(run.config, run.file(rd.CONFIG))),
        "tokenizers": (run.file(rd.TOKENIZERS), lambda: rd.save_tokenizers(
            copy, run.target_tokenizer, run.source_tokenizer)),
        "report": (report, lambda: write_report({"wer": 0.5}, [], [], report)),
        "history": (history, lambda: text.write_text_atomic(history, "{}")),
    }
    path, writer = writers[write]
    before = open(path, "rb").read()
    _crash_mid_write(monkeypatch, files)
    with pytest.raises(_Crash):
        writer()
    assert open(path, "rb").read() == before
    assert not [f for f in os.listdir(copy) if f.startswith(".tmp")], "temporary file left"


def test_crash_while_saving_a_model_leaves_the_old_one(copy, monkeypatch):
    from tfseq2seq.training.callbacks import BestModelSaver

    model = load_run(copy).model
    path = os.path.join(copy, rd.MODEL)
    before = open(path, "rb").read()
    real_open = builtins.open

    def crashing_save(tmp, *args, **kwargs):
        with real_open(tmp, "wb") as f:
            f.write(before[:100])
        raise _Crash("killed while saving")

    saver = BestModelSaver(path)
    saver.set_model(model)
    monkeypatch.setattr(model, "save", crashing_save)
    with pytest.raises(_Crash):
        saver.on_epoch_end(5, {"val_loss": -1.0})
    assert open(path, "rb").read() == before
    assert json.load(open(path + ".best.json"))["value"] != -1.0
    assert not [f for f in os.listdir(copy) if f.startswith(".tmp")]


def test_the_saved_model_is_the_best_by_its_monitor(trained, tmp_path):
    """G2P runs keep the model with the lowest dev WER; a best value of another monitor
    (e.g. from a run resumed under older code) does not count."""
    from tfseq2seq.training.callbacks import BestModelSaver

    assert json.load(open(os.path.join(trained, rd.MODEL + ".best.json")))["monitor"] == "val_wer"
    model = load_run(trained).model
    path = str(tmp_path / "m.keras")
    saver = BestModelSaver(path, monitor="val_wer")
    saver.set_model(model)
    saver.on_epoch_end(0, {"val_loss": 0.1, "val_wer": 0.5})
    saver.on_epoch_end(1, {"val_loss": 0.05, "val_wer": 0.6})  # lower loss, worse WER: kept
    assert json.load(open(path + ".best.json")) == {"monitor": "val_wer", "value": 0.5, "epoch": 1}
    with open(path + ".best.json", "w") as f:
        json.dump({"value": 0.01, "epoch": 7}, f)  # written by a val_loss saver
    saver.on_epoch_end(2, {"val_wer": 0.55})
    assert json.load(open(path + ".best.json"))["epoch"] == 3
