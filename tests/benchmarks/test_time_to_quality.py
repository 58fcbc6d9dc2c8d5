"""benchmarks/time_to_quality.py: runs and baseline points are read on the same dev words."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks"))

import time_to_quality  # noqa: E402


def fake_run(path, dev_limit, wers, seconds, finished=True):
    os.makedirs(os.path.join(path, "backup"), exist_ok=True)
    (path / "config.yaml").write_text(f"data:\n  dev_limit: {dev_limit}\n")
    history = {"val_wer": wers, "wall_seconds": seconds, "loss": [1.0] * len(wers)}
    if finished:
        (path / "history.json").write_text(json.dumps(history))
    else:
        (path / "backup" / "state.json").write_text(json.dumps({"history": history}))
    return str(path)


def baseline(path, **first):
    dev = {"wer": 0.28, "words": 6303, **{f"first_{n}": {"wer": w} for n, w in first.items()}}
    path.write_text(json.dumps({"train_seconds": 150.0, "dev": dev}))
    return str(path)


def test_plots_runs_and_a_point_on_the_runs_dev_words(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 2000, [0.4, 0.3], [60.0, 120.0])
    b = fake_run(tmp_path / "b", 2000, [0.5], [30.0], finished=False)  # still training
    point = baseline(tmp_path / "p.json", **{"2000": 0.31, "500": 0.2})
    out = tmp_path / "plot.png"
    time_to_quality.main([f"{a}=A", b, "--point", f"{point}=WFST", "-o", str(out)])
    printed = json.loads(capsys.readouterr().out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert printed["dev_words"] == 2000
    assert printed["runs"]["A"] == {"minutes": [1.0, 2.0], "val_wer": [0.4, 0.3]}
    assert printed["runs"]["b"]["val_wer"] == [0.5]
    assert printed["points"]["WFST"] == {"minutes": 2.5, "wer": 0.31}  # first 2000, not all


def test_whole_dev_runs_use_the_whole_dev_score(tmp_path, capsys):
    a = fake_run(tmp_path / "a", "null", [0.3], [60.0])
    point = baseline(tmp_path / "p.json", **{"2000": 0.31})
    time_to_quality.main([a, "--point", point, "-o", str(tmp_path / "x.png")])
    assert json.loads(capsys.readouterr().out)["points"]["p.json"]["wer"] == 0.28


def test_mismatched_dev_words_are_refused(tmp_path):
    a = fake_run(tmp_path / "a", 2000, [0.3], [60.0])
    b = fake_run(tmp_path / "b", 500, [0.3], [60.0])
    with pytest.raises(SystemExit, match="different dev words"):
        time_to_quality.main([a, b, "-o", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="--dev-prefix 2000"):
        time_to_quality.main([a, "--point", baseline(tmp_path / "p.json"), "-o", str(tmp_path / "x.png")])


def test_an_evaluate_report_is_a_point_at_the_given_minutes(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 2000, [0.3], [60.0])
    report = tmp_path / "eval.json"
    report.write_text(json.dumps({"metrics": {"split": "dev", "examples": 2000, "wer": 0.25}}))
    time_to_quality.main([a, "--point", f"{report}=ensemble@95.5", "-o", str(tmp_path / "x.png")])
    assert json.loads(capsys.readouterr().out)["points"]["ensemble"] == {"minutes": 95.5, "wer": 0.25}
    with pytest.raises(SystemExit, match="MINUTES"):
        time_to_quality.main([a, "--point", str(report), "-o", str(tmp_path / "x.png")])
    report.write_text(json.dumps({"metrics": {"split": "dev", "examples": 6303, "wer": 0.25}}))
    with pytest.raises(SystemExit, match="--limit 2000"):
        time_to_quality.main([a, "--point", f"{report}=e@1", "-o", str(tmp_path / "x.png")])
