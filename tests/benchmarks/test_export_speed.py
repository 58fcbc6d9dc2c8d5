"""benchmarks/export_speed.py: several exports timed in one process, each row its own
export's, ratios against the first."""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import export_speed
from smoke_runs import train_smoke_run

from tfseq2seq.cli.app import main as cli


def test_rows_follow_the_exports_and_ratios_are_against_the_first(tmp_path_factory, capsys):
    run = train_smoke_run(tmp_path_factory, name="speed")
    base = str(tmp_path_factory.mktemp("export") / "tiny")
    assert cli(["export", run, "--base-path", base]) == 0
    capsys.readouterr()
    shipped = os.path.join(ROOT, "models", "cmudict-g2p")
    export_speed.main([base, shipped, "--words", "32", "--single", "14", "--rounds", "1"])
    out = json.loads(capsys.readouterr().out)
    tiny, ensemble = out["models"]
    assert tiny["model"] == os.path.join(base, "1") and ensemble["model"].startswith(shipped)
    for name in ("serving_default", "beam_search"):
        assert "batch_256_ratio_vs_first" not in tiny[name]
        assert tiny[name]["batch_1"]["n"] == ensemble[name]["batch_1"]["n"] == 14 - 10  # the first 10 calls warm up
        # a 32-unit model against an ensemble of two 512-unit ones: the ratio is the
        # ensemble's rate over the tiny model's, far below 1 if the rows are not swapped
        assert 0 < ensemble[name]["batch_256_ratio_vs_first"] < 1
        assert ensemble[name]["batch_1_p50_ratio_vs_first"] > 1
