"""One text path: odd inputs give the same outputs on every path that turns text into ids
and ids into text — the training data pipeline, ``Translator`` (which ``translate``,
``evaluate``, ``plot-attention`` and the dev metrics use), the ``translate`` command and
the exported signatures loaded from disk — greedy and beam, truncating and rejecting."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq.cli.app import main
from tfseq2seq.config import load_config
from tfseq2seq.data.batching import make_dataset
from tfseq2seq.export.exporters import export_run
from tfseq2seq.inference.evaluation import evaluate
from tfseq2seq.inference.translator import Translator
from tfseq2seq.run_dir import load_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(ROOT, "configs", "smoke.yaml")
MAX_SOURCE_LEN = 8
ODD = {
    "empty": "",
    "whitespace only": "  \t ",
    "over-long": "a b c d e f g h i j k l m",  # over 8 tokens with either tokenizer
    "invalid UTF-8": b"\xffab\xfec",
    "unknown symbols": "\u4e16\u754c",  # 世界
    "mixed scripts": "hi\u65e9\u4e0a\u597d\U0001f44d q",  # hi早上好👍 q
    "plain": "hello",
}
TEXTS = list(ODD.values())


@pytest.fixture(scope="module", params=["char", "whitespace"])
def run(request, tmp_path_factory):
    from tfseq2seq.training.train import train

    path = str(tmp_path_factory.mktemp("paths") / request.param)
    config = load_config(SMOKE, [
        f"data.source_tokenizer={request.param}", f"data.max_source_len={MAX_SOURCE_LEN}",
        "training.epochs=1", "training.steps_per_epoch=3", "data.dev_limit=4",
        "decoding.beam_width=3", "decoding.length_penalty=0.8", "decoding.max_output_len=12"])
    train(config, path, verbose=0)
    run = load_run(path)
    exports = {overlong: tf.saved_model.load(export_run(run, os.path.join(path, overlong), overlong=overlong))
               for overlong in ("truncate", "reject")}
    return run, exports


def served(signature, texts):
    return {k: v.numpy() for k, v in signature(text=tf.constant(texts, tf.string)).items()}


def assert_same(translations, outputs):
    """``Translator`` results == one signature's outputs, row by row."""
    assert [t.text for t in translations] == [t.decode() for t in outputs["text"]]
    for i, t in enumerate(translations):
        n = int(outputs["lengths"][i])
        assert t.tokens == [tok.decode() for tok in outputs["tokens"][i, :n]]
        assert not outputs["tokens"][i, n:].any()
        np.testing.assert_allclose(t.score, outputs["scores"][i], rtol=1e-5, atol=1e-6)
        width = t.attention.shape[1]
        np.testing.assert_allclose(t.attention, outputs["attention"][i, :n, :width], atol=1e-6)
        assert not outputs["attention"][i, :, width:].any()


@pytest.mark.parametrize("signature", ["serving_default", "beam_search"])
def test_translator_equals_the_export_on_odd_inputs(run, signature):
    run, exports = run
    translator = Translator(run)
    beam = run.config.decoding.beam_width if signature == "beam_search" else None
    translations = translator.translate(TEXTS, beam_width=beam)
    outputs = served(exports["truncate"].signatures[signature], TEXTS)
    assert_same(translations, outputs)
    for name, t in zip(ODD, translations):  # the rules themselves (text/pipeline.py)
        assert len(t.source_tokens) <= MAX_SOURCE_LEN, name
        if not t.source_tokens:
            assert (t.text, t.tokens, t.score) == ("", [], 0.0), name
    assert translations[0].source_tokens == []  # "" has no tokens with either tokenizer
    # the output limit is the run's decoding.max_output_len on both paths
    assert max(len(t.tokens) for t in translations) <= 12


def test_evaluate_scores_what_the_export_serves(run):
    run, exports = run
    from tfseq2seq.data.corpora import load_config_corpus

    corpus = load_config_corpus(run.config)
    sources = [ex.source for ex in corpus.examples("dev")]
    _, translations = evaluate(Translator(run), corpus, "dev", beam_width=3, progress=False)
    outputs = served(exports["truncate"].signatures["beam_search"], sources)
    assert_same(translations, outputs)


def test_translate_command_prints_the_exported_texts(run, capsys):
    run, exports = run
    texts = [t for t in TEXTS if isinstance(t, str) and "\t" not in t]
    assert main(["translate", run.path, "--", *texts]) == 0
    printed = capsys.readouterr().out.splitlines()
    outputs = served(exports["truncate"].signatures["serving_default"], texts)
    assert printed == [f"{s}\t{t.decode()}" for s, t in zip(texts, outputs["text"])]
    assert main(["translate", run.path, "--beam-search", "--", *texts]) == 0
    outputs = served(exports["truncate"].signatures["beam_search"], texts)
    assert capsys.readouterr().out.splitlines() == [
        f"{s}\t{t.decode()}" for s, t in zip(texts, outputs["text"])]


def test_overlong_inputs_are_rejected_on_both_paths(run):
    run, exports = run
    translator = Translator(run, overlong="reject")
    short = [t for name, t in ODD.items() if name != "over-long"]
    for signature in ("serving_default", "beam_search"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="max_source_len=8"):
            served(exports["reject"].signatures[signature], TEXTS)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_source_len=8"):
        translator.translate(TEXTS)
    assert_same(translator.translate(short), served(exports["reject"].signatures["serving_default"], short))


def test_training_batches_hold_the_ids_the_model_is_served(run):
    run, _ = run
    pipeline = Translator(run).pipeline
    pairs = [(t.decode("utf-8", "replace") if isinstance(t, bytes) else t, "AH") for t in TEXTS]
    dataset, _ = make_dataset(pairs, pipeline, batch_size=len(pairs), shuffle=False,
                              max_source_len=MAX_SOURCE_LEN, overlong="truncate")
    (source, _), _ = next(iter(dataset))
    ids, counts = pipeline.source_ids(tf.constant([s for s, _ in pairs]))
    kept = counts.numpy() > 0  # pairs with no source token are not trained on
    expected = ids.numpy()[kept]
    assert source.shape[0] == kept.sum()
    np.testing.assert_array_equal(source.numpy()[:, :expected.shape[1]], expected)
    assert not source.numpy()[:, expected.shape[1]:].any()


def test_a_ready_model_answers_what_the_export_serves(run, monkeypatch, capsys):
    """``Pretrained.from_preset`` (Python) and ``translate --model`` (CLI) use an export
    with no run directory, by preset name or path, and answer what it serves."""
    from tfseq2seq import Pretrained
    from tfseq2seq.serving.pretrained import list_presets

    run, exports = run
    monkeypatch.setenv("TFSEQ2SEQ_MODELS", run.path)  # holds the exports truncate/, reject/
    assert {"truncate", "reject"} <= set(list_presets())
    by_name, by_path = Pretrained.from_preset("truncate"), Pretrained(os.path.join(run.path, "truncate", "1"))
    for beam, signature in ((False, "serving_default"), (True, "beam_search")):
        outputs = served(exports["truncate"].signatures[signature], TEXTS)
        expected = [t.decode() for t in outputs["text"]]
        assert by_name.translate(TEXTS, beam=beam) == expected == by_path.translate(TEXTS, beam=beam)
    texts = ["hello", "", "-x"]
    assert main(["translate", "--model", "truncate", "--beam-search", "--", *texts]) == 0
    outputs = served(exports["truncate"].signatures["beam_search"], texts)
    assert capsys.readouterr().out.splitlines() == [
        f"{s}\t{t.decode()}" for s, t in zip(texts, outputs["text"])]
    assert main(["translate", "--model", "nope", "x"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err
    assert main(["translate", "--model", "truncate", "--beam", "3", "x"]) == 2
    assert "not with --model" in capsys.readouterr().err


def test_evaluate_model_scores_the_export_as_evaluate_scores_the_run(run, tmp_path, monkeypatch, capsys):
    """``evaluate --model`` decodes with the export's signatures (in batches: 3 of 16 for
    the 36 dev words here) and gives the run's own ``evaluate`` numbers, greedy and beam."""
    import json

    from tfseq2seq.cli import model_commands
    from tfseq2seq.data.corpora import load_config_corpus

    run, _ = run
    if run.config.data.source_tokenizer != "char":
        pytest.skip("one tokenizer is enough")
    monkeypatch.setenv("TFSEQ2SEQ_MODELS", run.path)
    monkeypatch.setattr(model_commands, "EXPORT_BATCH", 16)
    corpus = load_config_corpus(run.config)
    assert len(corpus.examples("dev")) > 32
    for flags, beam in (([], None), (["--beam-search"], run.config.decoding.beam_width)):
        report = str(tmp_path / f"eval{beam}.json")
        assert main(["evaluate", "--model", "truncate", "--corpus", SMOKE, "--quiet",
                     "--output", report, *flags]) == 0
        with open(report, encoding="utf-8") as f:
            scored = json.load(f)
        expected, translations = evaluate(Translator(run), corpus, "dev", beam, progress=False)
        assert [o["output"] for o in scored["outputs"]] == [t.text for t in translations]
        assert len(scored["outputs"]) == len(corpus.examples("dev"))
        for key in ("wer", "per", "exact_match", "examples"):
            assert scored["metrics"][key] == pytest.approx(expected[key])
        assert f"{expected['wer']:.4f}" in capsys.readouterr().out
    assert main(["evaluate", run.path, "--model", "truncate"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["evaluate", "--model", "truncate", "--beam", "3"]) == 2
    assert "not with --model" in capsys.readouterr().err
    assert main(["evaluate", "--model", "truncate", "--corpus", "nope", "--limit", "2"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["evaluate"]) == 2
    assert "--model" in capsys.readouterr().err


def test_export_of_an_ensemble_of_the_run_with_itself_serves_the_same(run, capsys):
    run, exports = run
    base = os.path.join(run.path, "ensemble")
    assert main(["export", run.path, "--base-path", base, "--ensemble", run.path,
                 "--skip-verify", "--skip-op-check"]) == 0
    ensemble = tf.saved_model.load(os.path.join(base, "1"))
    for signature in ("serving_default", "beam_search"):
        alone = served(exports["truncate"].signatures[signature], TEXTS)
        together = served(ensemble.signatures[signature], TEXTS)
        assert list(together["text"]) == list(alone["text"])
        np.testing.assert_allclose(together["scores"], alone["scores"], atol=1e-4)


@pytest.mark.slow
def test_demo_part_a_serves_a_ready_model_and_scores_the_dev_split(run, monkeypatch, capsys):
    from tfseq2seq.cli.demo import serve_ready_model

    run, exports = run
    if run.config.data.source_tokenizer != "char":
        pytest.skip("one tokenizer is enough")
    monkeypatch.setenv("TFSEQ2SEQ_MODELS", run.path)
    metrics = serve_ready_model("truncate")
    printed = capsys.readouterr().out
    assert metrics["examples"] == 6303 and 0.0 <= metrics["wer"] <= 1.0
    assert "REST greedy" in printed and "gRPC beam" in printed and "wer" in printed
    assert serve_ready_model("nothing-here") is None
    assert "no ready model" in capsys.readouterr().out
