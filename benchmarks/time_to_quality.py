"""Time to quality: dev WER against training wall-clock minutes, one line per run, with
baselines (e.g. Phonetisaurus) as points. Writes a PNG and prints the plotted numbers as
one JSON object.

Each run directory's history (``history.json``, or ``backup/state.json`` while a run is
still training) holds per epoch ``val_wer`` (greedy, on the run's first
``data.dev_limit`` dev words) and ``wall_seconds`` (training wall time of the whole run,
dev decoding and restarts included). All runs must score the same dev words, and a
baseline point is read on those words too (``benchmarks/phonetisaurus.py`` reports
``dev.first_N`` for ``--dev-prefix N``), so lines and points are comparable.

    python benchmarks/time_to_quality.py runs/g2p=configs/g2p.yaml runs/best=recipe \\
        --point phonetisaurus.json=Phonetisaurus --point eval.json=ensemble@120 \\
        -o docs/time_to_quality.png
"""

import argparse
import json
import os
import sys


def run_curve(run_dir):
    """``(minutes, dev WERs)`` of a run directory, finished or still training."""
    for name in ("history.json", os.path.join("backup", "state.json")):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                history = json.load(f)
            history = history.get("history", history)
            break
    else:
        raise SystemExit(f"{run_dir}: no history.json or backup/state.json")
    if "wall_seconds" not in history or "val_wer" not in history:
        raise SystemExit(f"{run_dir}: the history has no wall_seconds/val_wer per epoch")
    return [s / 60 for s in history["wall_seconds"]], history["val_wer"]


def dev_words(run_dir):
    """The run's ``data.dev_limit`` (``None``: the whole dev split), from its config.yaml."""
    import yaml

    with open(os.path.join(run_dir, "config.yaml"), encoding="utf-8") as f:
        return (yaml.safe_load(f).get("data") or {}).get("dev_limit")


def point(path, words=None, minutes=None):
    """``(minutes, WER)`` on the first ``words`` dev words (``None``: all) of a baseline's
    JSON (``benchmarks/phonetisaurus.py``'s output), or of a ``tfseq2seq evaluate`` report
    (e.g. an ensemble export's; its training ``minutes`` must be given)."""
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    if "metrics" in result:  # an evaluate report: scored on exactly the words it decoded
        if minutes is None:
            raise SystemExit(f"{path}: an evaluate report; give its training time as =LABEL@MINUTES")
        scored = result["metrics"]
        if scored.get("split") != "dev" or (words is not None and scored["examples"] != words):
            raise SystemExit(f"{path}: scored {scored['examples']} {scored.get('split')} words; "
                             f"the runs score the first {words} dev words (evaluate --limit {words})")
        return minutes, scored["wer"]
    dev = result["dev"]
    if words is not None and words < dev["words"]:
        key = f"first_{words}"
        if key not in dev:
            raise SystemExit(f"{path}: no {key} dev score; rerun it with --dev-prefix {words}")
        dev = dev[key]
    return (result["train_seconds"] / 60 if minutes is None else minutes), dev["wer"]


def labelled(spec):
    path, _, label = spec.partition("=")
    return path, label or os.path.basename(path.rstrip("/"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR[=LABEL]", help="run directories")
    parser.add_argument("--point", action="append", default=[], metavar="JSON[=LABEL[@MINUTES]]",
                        help="a baseline's result JSON (train_seconds, dev.wer), or an evaluate "
                             "report with its training minutes (e.g. an ensemble's); repeatable")
    parser.add_argument("-o", "--output", default="time_to_quality.png", help="PNG path")
    parser.add_argument("--title", default=None,
                        help="default: CMUdict dev WER (greedy, first N words) vs training time")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from tfseq2seq.util.files import atomic_path

    limits = {path: dev_words(path) for path, _ in map(labelled, args.runs)}
    if len(set(limits.values())) > 1:
        raise SystemExit(f"the runs score different dev words (data.dev_limit): {limits}")
    words = next(iter(limits.values()))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plotted = {"dev_words": words, "runs": {}, "points": {}}
    for spec in args.runs:
        path, label = labelled(spec)
        minutes, wer = run_curve(path)
        ax.plot(minutes, [100 * w for w in wer], marker="o", markersize=3, label=label)
        plotted["runs"][label] = {"minutes": minutes, "val_wer": wer}
    for spec in args.point:
        path, label = labelled(spec)
        label, _, given = label.partition("@")
        minutes, wer = point(path, words, float(given) if given else None)
        ax.scatter([minutes], [100 * wer], marker="*", s=160, zorder=3, label=label)
        plotted["points"][label] = {"minutes": minutes, "wer": wer}
    ax.set_xlabel("training wall-clock minutes (2 CPU cores)")
    ax.set_ylabel("dev WER (%)")
    what = f"first {words} dev words" if words else "all dev words"
    ax.set_title(args.title or f"CMUdict WER (greedy, {what}) vs training time", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(args.output, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    json.dump({"output": args.output, **plotted}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
