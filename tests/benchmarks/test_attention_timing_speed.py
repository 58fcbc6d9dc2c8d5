"""benchmarks/attention_timing_speed.py: one process, every run timed on the same batches
and words, each row labelled with its own run's attention timing."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import attention_timing_speed as speed
from smoke_runs import train_smoke_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return [train_smoke_run(tmp_path_factory, f"model.attention_timing={t}", name=t)
            for t in ("luong", "bahdanau")]


def test_rows_follow_the_runs_and_ratios_are_against_the_first(runs, capsys):
    speed.main([*reversed(runs), "--words", "12", "--batches", "2", "--batch-size", "4",
                "--rounds", "1"])
    out = json.loads(capsys.readouterr().out)
    assert [r["attention_timing"] for r in out["runs"]] == ["bahdanau", "luong"]
    assert [r["run"] for r in out["runs"]] == list(reversed(runs))
    first, second = out["runs"]
    for name in ("train_tokens", "teacher_forced_train_tokens", "greedy_words", "beam5_words"):
        assert first[f"{name}_ratio_vs_first"] == 1.0
        assert second[f"{name}_per_s"] > 0 and second[f"{name}_ratio_vs_first"] > 0
    # same batches for every run: one pipeline over the same dev pairs
    assert first["train_target_tokens_per_pass"] == second["train_target_tokens_per_pass"] > 0
