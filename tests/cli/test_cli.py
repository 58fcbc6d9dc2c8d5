"""End to end through the command line with configs/smoke.yaml."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tfseq2seq import export
from tfseq2seq.cli.app import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(ROOT, "configs", "smoke.yaml")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("run") / "r")
    assert main(["train", "--config", SMOKE, "--run-dir", path, "--quiet",
                 "--set", "training.epochs=2"]) == 0
    return path


def test_train_writes_a_complete_run_dir(run_dir):
    for name in ("config.yaml", "source.vocab", "target.vocab", "tokenizers.json",
                 "model.keras", "history.json"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    history = json.load(open(os.path.join(run_dir, "history.json")))
    assert len(history["loss"]) == 2 and "val_wer" in history and "teacher_forcing_p" in history
    assert os.listdir(os.path.join(run_dir, "logs")), "TensorBoard logs"
    assert not [f for f in os.listdir(run_dir) if f.startswith(".tmp")]


def test_evaluate_prints_table_and_writes_json(run_dir, capsys):
    assert main(["evaluate", run_dir, "--split", "dev", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "wer" in out and "per" in out and "exact_match" in out
    report = json.load(open(os.path.join(run_dir, "eval_dev.json")))
    words = {line.split("\t")[0] for line in open(os.path.join(ROOT, "configs/data/tiny_dev.tsv"))}
    assert report["metrics"]["examples"] == len(words) == len(report["outputs"])
    assert 0.0 <= report["metrics"]["wer"] <= 1.0
    assert main(["evaluate", run_dir, "--split", "dev", "--beam", "3", "--limit", "5", "--quiet"]) == 0
    assert json.load(open(os.path.join(run_dir, "eval_dev_beam3.json")))["metrics"]["decoding"] == "beam3"


def test_evaluate_scores_the_training_split_against_its_own_references(run_dir):
    assert main(["evaluate", run_dir, "--split", "train", "--limit", "7", "--quiet"]) == 0
    report = json.load(open(os.path.join(run_dir, "eval_train.json")))
    train = {}
    for line in open(os.path.join(ROOT, "configs/data/tiny_train.tsv"), encoding="utf-8"):
        word, pron = line.rstrip("\n").split("\t")
        train.setdefault(word, []).append(pron)
    assert report["metrics"]["split"] == "train" and len(report["outputs"]) == 7
    assert all(sorted(o["references"]) == sorted(train[o["source"]]) for o in report["outputs"])


def test_translate_prints_one_tab_separated_line_per_input(run_dir, capsys, monkeypatch):
    assert main(["translate", run_dir, "hello", "world", "--beam", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["hello", "world"]
    monkeypatch.setattr(sys, "stdin", open(os.path.join(ROOT, "configs/data/tiny_dev.tsv")))
    assert main(["translate", run_dir]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 40
    assert main(["translate", run_dir, "cat", "--show-attention"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("cat\t") and all("c:" in line for line in lines[1:])


def test_plot_attention_writes_a_png(run_dir, tmp_path):
    out = tmp_path / "att.png"
    assert main(["plot-attention", run_dir, "hello", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_attention_gallery_puts_greedy_beside_beam(run_dir, tmp_path, capsys):
    """Two inputs x (greedy, beam): a 2x2 grid whose printed outputs are what
    ``translate`` gives each way."""
    from matplotlib.image import imread

    single, gallery = tmp_path / "one.png", tmp_path / "gallery.png"
    assert main(["plot-attention", run_dir, "cat", "-o", str(single)]) == 0
    capsys.readouterr()
    assert main(["plot-attention", run_dir, "cat", "hello", "--greedy-and-beam", "-o", str(gallery)]) == 0
    lines = capsys.readouterr().out.splitlines()[:2]
    assert [line.split("\t")[0] for line in lines] == ["cat", "hello"]
    for flags, column in (([], 1), (["--beam-search"], 2)):
        assert main(["translate", run_dir, "cat", "hello", *flags]) == 0
        expected = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
        assert [line.split("\t")[column] for line in lines] == expected
    one, grid = imread(str(single)).shape, imread(str(gallery)).shape
    assert grid[0] > 1.5 * one[0] and grid[1] > 1.5 * one[1]  # two rows, two columns
    assert main(["plot-attention", run_dir, "cat", "--greedy-and-beam", "--beam", "3"]) == 2


def test_plot_attention_compare_puts_each_run_in_its_own_column(run_dir, tmp_path_factory, capsys):
    """``--compare OTHER``: each input's row holds RUN_DIR's decoding, then OTHER's — each
    what ``translate`` of that run prints."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from smoke_runs import train_smoke_run

    other = train_smoke_run(tmp_path_factory, "training.epochs=4", "training.steps_per_epoch=40",
                            name="other")  # trained longer: decodes differently
    out = tmp_path_factory.mktemp("compare") / "compare.png"
    assert main(["plot-attention", run_dir, "cat", "hello", "--compare", other, "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()[:2]
    assert [line.split("\t")[1] for line in lines] != [line.split("\t")[2] for line in lines]
    for path, column in ((run_dir, 1), (other, 2)):
        assert main(["translate", path, "cat", "hello"]) == 0
        expected = [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]
        assert [line.split("\t")[column] for line in lines] == expected
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_export_writes_one_line_per_reference(tmp_path):
    train = os.path.join(ROOT, "configs/data/tiny_train.tsv")
    assert main(["data", "export", "tsv", str(tmp_path), "--train", train]) == 0
    assert open(tmp_path / "train.tsv").read().count("\n") == 400


@pytest.mark.parametrize("argv,message", [
    (["evaluate", "/nonexistent/run"], "run directory not found"),
    (["train", "--config", "/nonexistent.yaml", "--run-dir", "/tmp/x"], "config file not found"),
    (["train", "--config", SMOKE, "--run-dir", "/tmp/x", "--set", "model.unitz=3"], "model.unitz"),
])
def test_errors_are_one_line_without_traceback(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_error_exit_status_from_the_shell():
    result = subprocess.run([sys.executable, "-m", "tfseq2seq.cli.app", "evaluate", "/nonexistent/run"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_run_dir_without_model_is_reported(run_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.yaml", "source.vocab", "target.vocab", "tokenizers.json"):
        (broken / name).write_bytes(open(os.path.join(run_dir, name), "rb").read())
    assert main(["translate", str(broken), "x"]) == 2
    assert "missing model.keras" in capsys.readouterr().err
    (broken / "model.keras").write_bytes(b"not a zip")
    assert main(["translate", str(broken), "x"]) == 2
    assert "cannot load model" in capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ["train"], ["average"], ["evaluate"], ["translate"], ["plot-attention"], ["data", "export"], ["export"],
    ["serve"], ["query"], ["demo"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0 and "usage: tfseq2seq" in capsys.readouterr().out


def test_help_does_not_load_tensorflow():
    code = "import sys; from tfseq2seq.cli.app import build_parser; build_parser(); print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip() == "False"


def test_export_serve_and_query_agree_with_translate(run_dir, tmp_path, capsys):
    from tfseq2seq.serving.app import serve

    base = tmp_path / "export" / "g2p"
    assert main(["export", run_dir, "--base-path", str(base), "--skip-op-check"]) == 0
    assert (base / "1" / "saved_model.pb").exists()
    assert main(["export", run_dir, "--base-path", str(base), "--version", "1"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["translate", run_dir, "hello", "cat"]) == 0
    expected = capsys.readouterr().out
    with serve(str(base), "g2p", port=0, rest_api_port=0) as server:
        assert main(["query", "--rest", server.rest_url, "--model", "g2p", "hello", "cat"]) == 0
        assert capsys.readouterr().out == expected
        assert main(["query", "--grpc", server.grpc_target, "--model", "g2p", "hello", "cat"]) == 0
        assert capsys.readouterr().out == expected
        assert main(["query", "--rest", server.rest_url, "--model", "nope", "x"]) == 2
        assert "404" in capsys.readouterr().err
    # --xla: the greedy signature compiled with XLA gives the same translations
    xla_base = tmp_path / "export" / "g2p_xla"
    assert main(["export", run_dir, "--base-path", str(xla_base), "--xla", "--skip-op-check",
                 "--xla-warmup-rows", "2"]) == 0
    signature = tf.saved_model.load(str(xla_base / "1")).signatures["serving_default"]
    texts = signature(text=tf.constant(["hello", "cat"]))["text"].numpy()
    assert capsys.readouterr().out.startswith("exported:")
    assert "".join(f"{w}\t{t.decode()}\n" for w, t in zip(["hello", "cat"], texts)) == expected
    # 2 signatures' warm-up + one per compiled shape: rows 1, 2 x 8, 16 tokens (smoke.yaml's
    # max_source_len is 16)
    warmup = export.read_warmup_requests(str(xla_base / "1"))
    assert [len(r.inputs["text"].string_val) for r in warmup] == [1, 1, 1, 1, 2, 2]


def test_translator_truncates_sources_to_max_source_len(run_dir):
    """The Python-side path truncates like the export: the first ``max_source_len`` tokens,
    the ids of exactly those tokens, attention over them only."""
    from tfseq2seq.inference.translator import Translator
    from tfseq2seq.run_dir import load_run

    run = load_run(run_dir)
    texts = tf.constant(["abcdefg", "xy"])

    def encode(pipeline):
        ids, _ = pipeline.source_ids(texts)
        tokens = [[t.decode() for t in row] for row in pipeline.source_tokens(texts).to_list()]
        return ids.numpy(), tokens

    full_ids, full_tokens = encode(Translator(run, max_source_len=100).pipeline)
    ids, tokens = encode(Translator(run, max_source_len=3).pipeline)
    assert tokens == [full_tokens[0][:3], full_tokens[1]] and len(full_tokens[0]) > 3
    assert ids.shape == (2, 3) and (ids[0] == full_ids[0, :3]).all()
    assert (ids[0] == run.source_vocab.ids(tokens[0])).all() and ids[1, 2] == 0
    cut = Translator(run, max_source_len=3).translate(["abcdefg"])[0]
    same = Translator(run, max_source_len=3).translate(["".join(tokens[0])])[0]
    assert cut.source_tokens == tokens[0] and cut.attention.shape[1] == 3
    assert (cut.text, cut.tokens) == (same.text, same.tokens)


@pytest.mark.parametrize("argv, texts", [
    (["translate", "RUN", "--beam", "5", "--", "-x"], ["-x"]),
    (["translate", "RUN", "a", "--beam", "5", "b"], ["a", "b"]),
    (["translate", "--beam", "5", "RUN", "a", "--", "", "--y"], ["a", "", "--y"]),
    (["query", "--rest", "http://h", "hi", "--model", "m", "yo"], ["hi", "yo"]),
])
def test_texts_may_come_before_between_and_after_options(argv, texts):
    from tfseq2seq.cli.app import parse_args

    args = parse_args(argv)
    assert args.texts == texts and (args.command != "translate" or args.run_dir == "RUN")


@pytest.mark.parametrize("argv", [["translate", "RUN", "a", "--nope"],
                                  ["export", "RUN", "--base-path", "b", "--", "x"]])
def test_unknown_options_and_stray_texts_are_still_errors(argv, capsys):
    from tfseq2seq.cli.app import parse_args

    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
