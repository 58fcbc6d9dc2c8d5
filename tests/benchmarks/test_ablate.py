"""benchmarks/ablate.py: resumable grid runs and their summary (training mocked out)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks"))

import ablate  # noqa: E402

GRID = {"name": "t", "base": "configs/smoke.yaml", "budget": ["training.epochs=1"],
        "seeds": [0, 1, 2], "eval": {"split": "dev", "beam": 3},
        "cells": {"a": [], "b": ["model.cell=elman"]}}


def fake_run(grid, cell, seed, out, log):
    wer = {"a": [0.30, 0.32, 0.34], "b": [0.5, 0.5, 0.5]}[cell][seed]
    diverged = cell == "b" and seed == 2
    result = {"cell": cell, "seed": seed, "train_seconds": 60.0 * (seed + 1), "diverged": diverged}
    if not diverged:
        result.update(greedy={"wer": wer, "per": wer / 4}, beam3={"wer": wer - 0.01})
    return result


def test_grid_runs_resume_and_summarize(tmp_path, monkeypatch, capsys):
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(GRID))  # JSON is YAML
    calls = []
    monkeypatch.setattr(ablate, "run_cell", lambda *a: calls.append(a[1:3]) or fake_run(*a))
    ablate.main([str(path), "--out", str(tmp_path / "out"), "--cells", "a"])
    assert calls == [("a", 0), ("a", 1), ("a", 2)]
    ablate.main([str(path), "--out", str(tmp_path / "out")])  # "a" is done: only "b" runs
    assert calls[3:] == [("b", 0), ("b", 1), ("b", 2)]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["a"]["greedy_wer"]["mean"] == pytest.approx(0.32)
    assert summary["a"]["greedy_wer"]["sd"] == pytest.approx(0.02)
    assert summary["b"]["diverged"] == 1 and summary["b"]["greedy_wer"]["n"] == 2
    assert summary["a"]["train_minutes"]["mean"] == pytest.approx(2.0)
    assert (tmp_path / "out" / "summary.png").stat().st_size > 1000
    table = capsys.readouterr().out
    assert "| a | 3 (0) |" in table and "32.00 ± 2.00" in table and "| b | 3 (1) |" in table
    with pytest.raises(SystemExit, match="unknown cells"):
        ablate.main([str(path), "--cells", "c"])


@pytest.mark.parametrize("path", sorted(
    os.path.join(ablate.ROOT, "benchmarks", "grids", n)
    for n in os.listdir(os.path.join(ablate.ROOT, "benchmarks", "grids"))))
def test_every_committed_grid_cell_is_a_valid_config(path):
    from tfseq2seq import ScheduledSampling
    from tfseq2seq.config import load_config

    grid = ablate.load_grid(path)
    assert len(grid["seeds"]) >= (3 if grid["name"].startswith("q") else 1)  # questions: 3+
    for cell, overrides in grid["cells"].items():
        config = load_config(os.path.join(ablate.ROOT, grid["base"]),
                             [*grid["budget"], *overrides, "training.seed=0"])
        if config.sampling.schedule:
            ScheduledSampling(config.sampling.schedule, config.sampling.mode,
                              **config.sampling.params())


def fake_probed_run(cell, seed, scale, diverged=False):
    return {"cell": cell, "seed": seed, "diverged": diverged, "train_seconds": 60.0,
            "dev_loss": 0.2 * scale, "greedy": {"wer": 0.3 * scale},
            "dynamics": {"hidden_norm": [scale * (t + 1) for t in range(6)],
                         "grad_norm": [scale / (t + 1) for t in range(6)]},
            "butterfly": {"base_rate": 0.1, "words_with_errors": 5,
                          "by_offset": [{"offset": k, "rate": 0.5 / k, "words": 5} for k in (1, 2, 3)]},
            "wer_by_length": [{"lengths": "≤4", "words": 3, "wer": 0.1 * scale},
                              {"lengths": ">12", "words": 2, "wer": 0.5 * scale}]}


def test_question_plots_are_drawn_from_the_runs(tmp_path, monkeypatch):
    """Each plot a grid names is written, drawn from the non-diverged runs only (a diverged
    run's NaN norms would otherwise blank the lines); unknown plot names are refused."""
    import ablate_plots

    grid = {"name": "q", "plots": list(ablate_plots.PLOTS)}
    found = {"tanh": [fake_probed_run("tanh", s, 1.0) for s in range(3)],
             "relu": [fake_probed_run("relu", 0, 2.0),
                      {**fake_probed_run("relu", 1, float("nan")), "diverged": True}]}
    means = []
    monkeypatch.setattr(ablate_plots, "_mean_rows",
                        lambda rows, real=ablate_plots._mean_rows: means.append(real(rows)) or means[-1])
    paths = ablate_plots.make(grid, found, str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths) == sorted(f"{n}.png" for n in ablate_plots.PLOTS)
    assert all(os.path.getsize(p) > 1000 for p in paths)
    assert [2.0, 4.0, 6.0, 8.0, 10.0, 12.0] in means  # relu's hidden norm: the finite run alone
    assert all(v == v for row in means for v in row)  # no NaN reached a line
    with pytest.raises(SystemExit, match="unknown plots"):
        ablate_plots.make({"name": "q", "plots": ["heat"]}, found, str(tmp_path))


def test_seed_table_shows_each_seed_and_marks_divergence_and_gaps():
    """A cell where one seed learns and another does not has a mean ± sd that describes
    neither; the per-seed table shows both, in seed order, whatever order the runs were
    read in."""
    grid = {"seeds": [0, 1, 2]}
    found = {"tanh": [fake_run(GRID, "a", 2, None, None), fake_run(GRID, "a", 0, None, None)],
             "relu": [fake_run(GRID, "b", s, None, None) for s in (0, 1, 2)]}
    lines = ablate.seed_table(grid, found).splitlines()
    assert lines[0] == "| cell | seed 0 | seed 1 | seed 2 |"
    assert lines[2] == "| tanh | 30.00 |  | 34.00 |"
    assert lines[3] == "| relu | 50.00 | 50.00 | diverged |"
    assert ablate.seed_table(grid, found, "per").splitlines()[2] == "| tanh | 7.50 |  | 8.50 |"


def test_length_table_averages_each_bucket_over_the_runs_that_did_not_diverge():
    import ablate_plots

    found = {"tanh": [fake_probed_run("tanh", 0, 1.0), fake_probed_run("tanh", 1, 2.0)],
             "relu": [fake_probed_run("relu", 0, 1.0),
                      {**fake_probed_run("relu", 1, 9.0), "diverged": True}]}
    lines = ablate_plots.length_table(found).splitlines()
    assert lines[0] == "| cell | ≤4 (3 words) | >12 (2 words) |"
    assert lines[2] == "| tanh | 15.0 | 75.0 |"
    assert lines[3] == "| relu | 10.0 | 50.0 |"
    assert ablate_plots.length_table({"gru": [fake_run(GRID, "a", 0, None, None)]}) == ""
