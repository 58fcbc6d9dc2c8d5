"""Ablations: a named grid of configs x seeds trained under one fixed budget, resumably,
with one JSON per run, a summary table (mean ± sd over seeds) and a PNG plot.

A grid is a YAML file (``benchmarks/grids/*.yaml``)::

    name: g2p-levers
    base: configs/g2p.yaml            # relative to the repository
    budget: [training.epochs=3]       # --set overrides every cell shares (the budget)
    seeds: [0, 1, 2]
    eval: {split: dev, limit: 2000}   # scored after training, greedy (and beam: beam: 5)
    probes: [dynamics]                # optional, per run: dynamics (probe_dynamics.py),
                                      # redrawn (probe_redrawn.py)
    plots: [dynamics, butterfly]      # optional: per-question plots (ablate_plots.py)
    cells:
      baseline: []
      lstm: [model.cell=lstm]

Each (cell, seed) trains with ``tfseq2seq train`` in a subprocess into
``OUT/<cell>/seed<k>/`` (a killed run resumes there), is scored with ``tfseq2seq
evaluate``, and writes ``OUT/<cell>/seed<k>.json``; runs whose JSON exists are skipped.
A run whose training loss became NaN or inf is recorded as diverged (not scored). Each
JSON also holds the teacher-forced dev loss (``dev_loss``, beside the free-running greedy
scores: the exposure-bias gap) and, for G2P-style metrics, the greedy errors by position
after the first mistake (``butterfly``, ``tfseq2seq.inference.butterfly``) and WER by
source-length bucket (``wer_by_length``). Every subprocess imports tfseq2seq from this
checkout, so a grid run from a ``git worktree`` of a fixed commit measures that commit
while the main checkout changes.

    python benchmarks/ablate.py benchmarks/grids/g2p-levers.yaml            # run + summary
    python benchmarks/ablate.py benchmarks/grids/g2p-levers.yaml --summary  # summary only
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ablate_plots  # noqa: E402

from tfseq2seq.inference.butterfly import errors_after_first_mistake
from tfseq2seq.inference.metrics import wer_by_source_length

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ("wer", "per", "exact_match", "bleu", "chrf")
# probes a grid may name: key in each run's JSON -> script run on the trained run (stdout JSON)
PROBES = {"dynamics": "probe_dynamics.py",  # per-position ‖h_t‖ and ‖∂L/∂x_t‖ (Q1)
          "redrawn": "probe_redrawn.py"}    # greedy scores with re-drawn embeddings
# every subprocess imports tfseq2seq from this checkout (not whatever the venv points at),
# so a grid run from a git worktree measures that worktree's code
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}


def load_grid(path):
    with open(path, encoding="utf-8") as f:
        grid = yaml.safe_load(f)
    missing = {"name", "base", "cells"} - set(grid)
    if missing:
        raise SystemExit(f"{path}: grid needs {sorted(missing)}")
    grid.setdefault("budget", [])
    grid.setdefault("seeds", [0])
    grid.setdefault("eval", {"split": "dev"})
    unknown = set(grid.get("plots", [])) - set(ablate_plots.PLOTS)
    if unknown:
        raise SystemExit(f"{path}: unknown plots {sorted(unknown)}; known: {list(ablate_plots.PLOTS)}")
    unknown = set(grid.get("probes", [])) - set(PROBES)
    if unknown:
        raise SystemExit(f"{path}: unknown probes {sorted(unknown)}; known: {list(PROBES)}")
    return grid


def run_cell(grid, cell, seed, out, log):
    """Trains and scores one (cell, seed); returns its result dict."""
    run_dir = os.path.join(out, cell, f"seed{seed}")
    overrides = [*grid["budget"], *grid["cells"][cell], f"training.seed={seed}"]
    command = [sys.executable, "-m", "tfseq2seq.cli.app", "train", "--quiet",
               "--config", os.path.join(ROOT, grid["base"]), "--run-dir", run_dir]
    command += [a for o in overrides for a in ("--set", o)]
    started = time.time()
    with open(os.path.join(out, cell, f"seed{seed}.log"), "a", encoding="utf-8") as f:
        subprocess.run(command, check=True, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=ENV)
    with open(os.path.join(run_dir, "history.json"), encoding="utf-8") as f:
        history = json.load(f)
    result = {"cell": cell, "seed": seed, "overrides": overrides, "history": history,
              "train_seconds": history.get("wall_seconds", [time.time() - started])[-1],
              "diverged": any(not math.isfinite(v) for v in history.get("loss", []))}
    if not result["diverged"]:
        for name, beam in (("greedy", None), (f"beam{grid['eval'].get('beam')}", grid["eval"].get("beam"))):
            if name != "greedy" and not beam:
                continue
            report = os.path.join(run_dir, f"eval_{name}.json")
            command = [sys.executable, "-m", "tfseq2seq.cli.app", "evaluate", run_dir, "--quiet",
                       "--split", grid["eval"].get("split", "dev"), "--output", report]
            command += ["--limit", str(grid["eval"]["limit"])] if grid["eval"].get("limit") else []
            command += ["--beam", str(beam)] if beam else []
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=ENV)
            with open(report, encoding="utf-8") as f:
                report = json.load(f)
            result[name] = report["metrics"]
            if name == "greedy" and result[name].get("wer") is not None:
                hyps = [o["output"] for o in report["outputs"]]
                refs = [o["references"] for o in report["outputs"]]
                result["butterfly"] = errors_after_first_mistake(hyps, refs)  # free-running
                result["wer_by_length"] = wer_by_source_length(
                    [o["source"] for o in report["outputs"]], hyps, refs)
        # the exposure-bias gap: teacher-forced dev loss beside the free-running scores
        result["dev_loss"] = history.get("val_loss", [None])[-1]
        for name in grid.get("probes", []):
            probe = subprocess.run(
                [sys.executable, os.path.join(ROOT, "benchmarks", PROBES[name]), run_dir],
                check=True, capture_output=True, text=True, cwd=ROOT, env=ENV)
            result[name] = json.loads(probe.stdout)
    scores = {k: round(v, 4) for k, v in result.get("greedy", {}).items() if k in METRICS}
    log(f"{cell} seed {seed}: {'diverged' if result['diverged'] else scores} "
        f"({result['train_seconds']:.0f} s of training)")
    return result


def results(grid, out):
    found = {}
    for cell in grid["cells"]:
        for seed in grid["seeds"]:
            path = os.path.join(out, cell, f"seed{seed}.json")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    found.setdefault(cell, []).append(json.load(f))
    return found


def summarize(grid, found):
    """``{cell: {metric: {"mean", "sd", "n"}, "diverged": k, "runs": n}}``."""
    summary = {}
    for cell, runs in found.items():
        row = {"runs": len(runs), "diverged": sum(r["diverged"] for r in runs)}
        ok = [r for r in runs if not r["diverged"]]
        columns = {f"{d}_{m}": [r[d][m] for r in ok if m in r.get(d, {})]
                   for d in ("greedy", f"beam{grid['eval'].get('beam')}") for m in METRICS}
        for side in ("source", "target", "both"):  # the redrawn probe's greedy scores
            columns[f"redrawn_{side}_wer"] = [r["redrawn"][side]["wer"] for r in ok
                                              if "wer" in r.get("redrawn", {}).get(side, {})]
        columns["train_minutes"] = [r["train_seconds"] / 60 for r in runs]
        for key, values in columns.items():
            if values:
                row[key] = {"mean": statistics.fmean(values), "n": len(values),
                            "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
        summary[cell] = row
    return summary


def table(summary):
    keys = sorted({k for row in summary.values() for k in row
                   if k.endswith(("_wer", "_per", "_bleu"))}) + ["train_minutes"]
    lines = ["| cell | runs (diverged) | " + " | ".join(keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for cell, row in summary.items():
        cells = [(f"{100 * row[k]['mean']:.2f} ± {100 * row[k]['sd']:.2f}" if k != "train_minutes"
                  else f"{row[k]['mean']:.1f}") if k in row else "" for k in keys]
        lines.append(f"| {cell} | {row['runs']} ({row['diverged']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_table(grid, found, metric="wer"):
    """One row per cell, one greedy ``metric`` column per seed ("diverged" or blank for a
    run that diverged or has not run): the spread a mean ± sd hides when some seeds learn
    and others do not."""
    lines = ["| cell | " + " | ".join(f"seed {s}" for s in grid["seeds"]) + " |",
             "|---|" + "---|" * len(grid["seeds"])]
    for cell, runs in found.items():
        by_seed = {r["seed"]: r for r in runs}
        cells = []
        for seed in grid["seeds"]:
            run = by_seed.get(seed)
            if run is None:
                cells.append("")
            elif run["diverged"]:
                cells.append("diverged")
            else:
                value = run.get("greedy", {}).get(metric)
                cells.append("" if value is None else f"{100 * value:.2f}")
        lines.append(f"| {cell} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(grid, summary, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    cells = [c for c in summary if "greedy_wer" in summary[c]]
    means = [100 * summary[c]["greedy_wer"]["mean"] for c in cells]
    sds = [100 * summary[c]["greedy_wer"]["sd"] for c in cells]
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(cells), 4))
    ax.bar(range(len(cells)), means, yerr=sds, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels(cells, rotation=30, ha="right")
    ax.set_ylabel(f"{grid['eval'].get('split', 'dev')} WER (%), greedy, mean ± sd")
    ax.set_title(grid["name"], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", help="grid YAML (benchmarks/grids/)")
    p.add_argument("--out", help="output folder (default runs/ablate/<grid name>)")
    p.add_argument("--summary", action="store_true", help="only summarize the finished runs")
    p.add_argument("--cells", help="comma-separated subset of the grid's cells")
    p.add_argument("--per-seed", metavar="METRIC", nargs="?", const="wer",
                   help="also print one greedy METRIC column per seed (default wer)")
    p.add_argument("--by-length", action="store_true",
                   help="also print greedy WER per source-length bucket (runs with an eval report)")
    args = p.parse_args(argv)
    grid = load_grid(args.grid)
    out = args.out or os.path.join(ROOT, "runs", "ablate", grid["name"])
    chosen = args.cells.split(",") if args.cells else list(grid["cells"])
    unknown = set(chosen) - set(grid["cells"])
    if unknown:
        raise SystemExit(f"unknown cells {sorted(unknown)}; the grid has {list(grid['cells'])}")

    def log(message):
        print(message, file=sys.stderr, flush=True)

    if not args.summary:
        for seed in grid["seeds"]:  # seed-major: a partial grid still covers every cell
            for cell in chosen:
                path = os.path.join(out, cell, f"seed{seed}.json")
                if not os.path.exists(path):
                    os.makedirs(os.path.join(out, cell), exist_ok=True)
                    result = run_cell(grid, cell, seed, out, log)
                    with open(path + ".tmp", "w", encoding="utf-8") as f:
                        json.dump(result, f, indent=1)
                    os.replace(path + ".tmp", path)
    found = results(grid, out)
    summary = summarize(grid, found)
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    if summary:
        plot(grid, summary, os.path.join(out, "summary.png"))
        for path in ablate_plots.make(grid, found, out):
            log(f"written: {path}")
    print(table(summary))
    if args.per_seed:
        print()
        print(seed_table(grid, found, args.per_seed))
    if args.by_length:
        print()
        print(ablate_plots.length_table(found))


if __name__ == "__main__":
    main()
