"""Checkpoint averaging (`tfseq2seq average`): the output's weights are the element-wise
mean of the chosen epoch files, the output is a complete run directory, and bad requests
fail with one clear line, leaving nothing behind."""

import json
import os
import re
import shutil

import numpy as np
import pytest

from tfseq2seq import run_dir as rd
from tfseq2seq.cli.app import main
from tfseq2seq.model import Seq2Seq
from tfseq2seq.run_dir import load_run
from tfseq2seq.training.averaging import AVERAGED, average_checkpoints

from smoke_runs import train_smoke_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(ROOT, "configs", "smoke.yaml")
WORDS = ["cat", "hello", "zebra"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_smoke_run(tmp_path_factory, "training.epochs=3", "training.keep_checkpoints=2")


@pytest.fixture
def copy(trained, tmp_path):
    path = str(tmp_path / "copy")
    shutil.copytree(trained, path)
    return path


def _file(run, epoch):
    return os.path.join(run, "checkpoints", f"epoch-{epoch:03d}.weights.h5")


def _weights(run, path):
    """``{variable path: value}`` of the run's model with the weights file ``path``."""
    model = Seq2Seq.from_config(load_run(run).model.get_config())
    model.load_weights(path)
    return {v.path: v.numpy() for v in model.weights}


def _model_weights(run):
    return {v.path: v.numpy() for v in load_run(run).model.weights}


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _leftovers(directory):
    return [n for n in os.listdir(directory) if n.startswith(".tmp")]


def test_only_the_last_epochs_weights_are_kept(trained):
    assert sorted(os.listdir(os.path.join(trained, "checkpoints"))) == [
        "epoch-002.weights.h5", "epoch-003.weights.h5"]


def test_averaged_weights_are_the_mean_of_the_files(trained, tmp_path):
    out = str(tmp_path / "avg")
    assert average_checkpoints(trained, out, last=2) == out
    two, three = _weights(trained, _file(trained, 2)), _weights(trained, _file(trained, 3))
    averaged = _model_weights(out)
    assert averaged.keys() == two.keys() == three.keys() and len(averaged) >= 10
    for name, value in averaged.items():
        assert value.dtype == two[name].dtype, name
        np.testing.assert_allclose(value, np.mean([two[name], three[name]], axis=0),
                                   rtol=1e-6, atol=1e-7, err_msg=name)
    # the epochs differ, so the mean is neither file
    assert any(not np.allclose(averaged[k], three[k]) for k in averaged)
    assert any(not np.allclose(averaged[k], two[k]) for k in averaged)
    record = json.loads(_read(os.path.join(out, AVERAGED)))
    assert record["epochs"] == [2, 3]
    assert [os.path.basename(f) for f in record["files"]] == [
        "epoch-002.weights.h5", "epoch-003.weights.h5"]
    for name in (rd.CONFIG, rd.SOURCE_VOCAB, rd.TARGET_VOCAB, rd.TOKENIZERS):
        assert _read(os.path.join(out, name)) == _read(os.path.join(trained, name)), name
    assert not _leftovers(str(tmp_path))


@pytest.mark.parametrize("kwargs,epoch", [({"epochs": [2]}, 2), ({"last": 1}, 3)])
def test_averaging_one_file_reproduces_that_epoch(trained, tmp_path, kwargs, epoch):
    out = average_checkpoints(trained, str(tmp_path / "one"), **kwargs)
    expected, got = _weights(trained, _file(trained, epoch)), _model_weights(out)
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_output_is_a_run_directory_that_decodes_like_its_weights(trained, tmp_path):
    from tfseq2seq.inference.translator import Translator

    out = average_checkpoints(trained, str(tmp_path / "avg"), epochs=[3])
    averaged = Translator(load_run(out)).translate(WORDS)
    original = load_run(trained)
    original.model.load_weights(_file(trained, 3))
    reference = Translator(original).translate(WORDS)
    assert [t.text for t in averaged] == [t.text for t in reference]
    assert all(isinstance(t.text, str) for t in averaged)
    beams = Translator(load_run(out)).translate(WORDS, beam_width=3)
    assert len(beams) == len(WORDS)


def test_an_empty_output_directory_is_filled(trained, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    average_checkpoints(trained, str(out), last=1)
    assert sorted(os.listdir(out)) == sorted(
        [rd.CONFIG, rd.SOURCE_VOCAB, rd.TARGET_VOCAB, rd.TOKENIZERS, rd.MODEL, AVERAGED])


def test_cli_averages_and_the_result_works_with_the_other_commands(trained, tmp_path, capsys):
    out = str(tmp_path / "avg")
    assert main(["average", trained, "--output", out, "--epochs", "2,3"]) == 0
    printed = capsys.readouterr().out
    assert "epoch-002.weights.h5, epoch-003.weights.h5" in printed and f"written: {out}" in printed
    assert main(["translate", out, "cat", "--beam", "2"]) == 0
    assert capsys.readouterr().out.startswith("cat\t")
    report = str(tmp_path / "eval.json")
    assert main(["evaluate", out, "--limit", "3", "--quiet", "--output", report]) == 0
    assert json.loads(_read(report))["metrics"]["examples"] == 3


@pytest.mark.parametrize("args,message", [
    (["--last", "5"], "last=5 asks for more epochs than kept: .*holds epochs 2, 3"),
    (["--epochs", "1,3"], "no weights of epoch 1: .*holds epochs 2, 3"),
    (["--epochs", "3,3"], r"epochs must name each epoch once, got \[3, 3\]"),
])
def test_cli_errors_are_one_line_and_write_nothing(trained, tmp_path, capsys, args, message):
    out = str(tmp_path / "avg")
    assert main(["average", trained, "--output", out, *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfseq2seq: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not os.path.exists(out) and not _leftovers(str(tmp_path))


def test_cli_refuses_an_output_that_holds_a_model(trained, tmp_path, capsys):
    out = str(tmp_path / "avg")
    assert main(["average", trained, "--output", out, "--last", "1"]) == 0
    before = _read(os.path.join(out, rd.MODEL))
    capsys.readouterr()
    assert main(["average", trained, "--output", out, "--last", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tfseq2seq: error: output {out} already holds model.keras; choose a new directory"]
    assert _read(os.path.join(out, rd.MODEL)) == before
    assert main(["average", trained, "--output", trained, "--last", "1"]) == 2
    assert "already holds model.keras" in capsys.readouterr().err


def test_cli_usage_errors_exit_2(trained, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["average", "--help"])
    help_text = capsys.readouterr().out
    assert exit_.value.code == 0 and "--last N" in help_text and "--epochs E1,E2,..." in help_text
    out = str(tmp_path / "avg")
    for args in (["--last", "0"], ["--epochs", "2,x"], [], ["--last", "1", "--epochs", "2"]):
        with pytest.raises(SystemExit) as exit_:
            main(["average", trained, "--output", out, *args])
        assert exit_.value.code == 2, args
    assert "--epochs: expected comma-separated epoch numbers" in capsys.readouterr().err
    assert not os.path.exists(out)


@pytest.mark.parametrize("kwargs,message", [
    ({"last": 0}, "`last` must be a positive integer, got 0"),
    ({"last": 1, "epochs": [3]}, "either last or epochs"),
    ({"epochs": []}, "epochs must name each epoch once"),
    ({"epochs": [0]}, "`epochs` must be a positive integer, got 0"),
])
def test_bad_choices_are_named(trained, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        average_checkpoints(trained, str(tmp_path / "avg"), **kwargs)
    assert not os.listdir(tmp_path)


def test_a_run_without_checkpoints_is_named(copy, tmp_path):
    shutil.rmtree(os.path.join(copy, "checkpoints"))
    with pytest.raises(ValueError, match=f"{re.escape(copy)} has no checkpoints/ directory.*keep_checkpoints"):
        average_checkpoints(copy, str(tmp_path / "avg"), last=1)


@pytest.mark.parametrize("change,problem", [
    ({"units": 64}, r"decoder/attention/vars/0 is \(64, 64\) in the file, \(32, 32\) in the model"),
    ({"encoder_layers": 2}, "encoder/forward_cells/gru_cell_1/vars/0 is .* in the file, absent in the model"),
    ({"attention": None}, "decoder/attention/vars/0 is missing in the file"),
    (None, "Unable to .*open file"),  # not an HDF5 file
])
def test_a_checkpoint_of_another_model_is_named(copy, tmp_path, change, problem):
    bad = _file(copy, 4)
    if change is None:
        _write(bad, b"not weights")
    else:
        Seq2Seq.from_config({**load_run(copy).model.get_config(), **change}).save_weights(bad)
    with pytest.raises(ValueError, match=f"{re.escape(bad)} does not fit the run's model: {problem}"):
        average_checkpoints(copy, str(tmp_path / "avg"), last=2)
    assert not os.path.exists(tmp_path / "avg") and not _leftovers(str(tmp_path))


def test_a_failed_save_leaves_nothing(trained, tmp_path, monkeypatch):
    def broken_save(self, path, *args, **kwargs):
        _write(path, b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(Seq2Seq, "save", broken_save)
    out = tmp_path / "avg"
    with pytest.raises(OSError, match="disk full"):
        average_checkpoints(trained, str(out), last=2)
    assert not out.exists() and not os.listdir(tmp_path)


def test_epoch_files_are_ordered_by_epoch_number(tmp_path):
    from tfseq2seq.training.callbacks import epoch_weights

    for epoch in (999, 1000, 998, 7):
        (tmp_path / f"epoch-{epoch:03d}.weights.h5").write_bytes(b"")
    (tmp_path / "epoch-x.weights.h5").write_bytes(b"")  # not an epoch file
    assert [os.path.basename(p) for _, p in epoch_weights(str(tmp_path))] == [
        "epoch-007.weights.h5", "epoch-998.weights.h5", "epoch-999.weights.h5",
        "epoch-1000.weights.h5"]
