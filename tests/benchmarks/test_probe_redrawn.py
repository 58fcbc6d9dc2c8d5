"""benchmarks/probe_redrawn.py: the trained model's dev scores beside those of copies with
re-drawn embeddings, and ablate.py's grids carrying them into the summary."""

import dataclasses
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import ablate  # noqa: E402
import probe_redrawn  # noqa: E402
from smoke_runs import train_smoke_run  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_smoke_run(tmp_path_factory, name="redrawn")


def test_probe_scores_the_trained_model_and_one_copy_per_side(run_dir, monkeypatch, capsys):
    from tfseq2seq.data.corpora import load_config_corpus
    from tfseq2seq.inference import dynamics
    from tfseq2seq.inference.evaluation import evaluate
    from tfseq2seq.inference.translator import Translator
    from tfseq2seq.run_dir import load_run

    drawn = []
    real = dynamics.with_redrawn_embeddings

    def recording(model, sides, seed):
        drawn.append((sides, seed))
        return real(model, sides, seed)

    monkeypatch.setattr(dynamics, "with_redrawn_embeddings", recording)
    probe_redrawn.main([run_dir, "--limit", "6", "--seed", "3"])
    result = json.loads(capsys.readouterr().out)
    assert drawn == [(("source",), 3), (("target",), 3), (("source", "target"), 3)]
    run = load_run(run_dir)
    metrics, translations = evaluate(Translator(run), load_config_corpus(run.config), "dev",
                                     limit=6, progress=False)
    assert result["trained"]["examples"] == 6
    assert result["trained"]["wer"] == pytest.approx(metrics["wer"])
    assert [s["output"] for s in result["trained"]["samples"]] == [t.text for t in translations[:3]]
    # the copy the probe scores as "target" decodes like a copy drawn the same way
    copy = real(run.model, ("target",), seed=3)
    _, redrawn = evaluate(Translator(dataclasses.replace(run, model=copy)),
                          load_config_corpus(run.config), "dev", limit=6, progress=False)
    assert [s["output"] for s in result["target"]["samples"]] == [t.text for t in redrawn[:3]]


def test_grid_summary_has_a_column_per_redrawn_side(tmp_path):
    runs = [{"cell": "a", "seed": s, "diverged": False, "train_seconds": 60.0,
             "greedy": {"wer": 0.3}, "redrawn": {side: {"wer": 0.9 + 0.01 * s}
                                                 for side in ("source", "target", "both")}}
            for s in range(3)]
    summary = ablate.summarize({"eval": {}}, {"a": runs})
    assert summary["a"]["redrawn_target_wer"]["mean"] == pytest.approx(0.91)
    assert "redrawn_both_wer" in ablate.table(summary)
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps({"name": "t", "base": "configs/smoke.yaml", "cells": {"a": []},
                                "probes": ["redrawn", "gradients"]}))
    with pytest.raises(SystemExit, match="unknown probes.*gradients"):
        ablate.load_grid(str(path))


def test_grid_subprocesses_import_this_checkout():
    assert ablate.ENV["PYTHONPATH"].split(os.pathsep)[0] == ablate.ROOT
