"""The per-question plots of an ablation grid (``plots:`` in its YAML), drawn from the
runs' JSON results, one line per cell (the mean over its seeds that did not diverge; the
dynamics plot adds each seed as a thin line):

- ``dynamics``: hidden-state norm ‖h_t‖ and gradient norm ‖∂L/∂x_t‖ per source position
  (question 1: what an unbounded activation does over a long recurrence);
- ``butterfly``: the error rate k positions after a word's first mistake, free-running
  greedy decoding (question 2: the "butterfly effect" of an early error);
- ``exposure``: teacher-forced dev loss against free-running greedy WER, one point per
  run (question 2: the exposure-bias gap);
- ``length``: WER by source-length bucket (the fixed-context bottleneck on long inputs).
"""

import statistics

PLOTS = ("dynamics", "butterfly", "exposure", "length")


def _mean_rows(rows):
    """Element-wise mean of equal-length lists, truncated to the shortest."""
    n = min(len(r) for r in rows)
    return [statistics.fmean(r[i] for r in rows) for i in range(n)]


def _ok(runs, key):
    return [r for r in runs if not r.get("diverged") and r.get(key)]


def _cells_with(found, key):
    """``{cell: runs}`` of the cells with at least one non-diverged run holding ``key``."""
    cells = {c: _ok(runs, key) for c, runs in found.items()}
    return {c: runs for c, runs in cells.items() if runs}


def _label(ax, xlabel, ylabel):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def make(grid, found, out_dir):
    """Writes ``out_dir/<plot>.png`` for each plot the grid names; returns the paths."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    unknown = set(grid.get("plots", [])) - set(PLOTS)
    if unknown:
        raise SystemExit(f"unknown plots {sorted(unknown)}; known: {list(PLOTS)}")
    written = []
    for name in grid.get("plots", []):
        fig = {"dynamics": _dynamics, "butterfly": _butterfly, "exposure": _exposure,
               "length": _length}[name](plt, found)
        if fig is None:
            continue
        fig.suptitle(f"{grid['name']}: {name}", fontsize=10)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{name}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def _dynamics(plt, found):
    cells = _cells_with(found, "dynamics")
    if not cells:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for colour, (cell, runs) in enumerate(cells.items()):
        for ax, key in zip(axes, ("hidden_norm", "grad_norm")):
            rows = [r["dynamics"][key] for r in runs]
            values = _mean_rows(rows)
            ax.plot(range(1, len(values) + 1), values, color=f"C{colour}", label=cell)
            if len(rows) > 1:  # each seed thin: a mean of a saturated and a learning run is neither
                for row in rows:
                    ax.plot(range(1, len(row) + 1), row, color=f"C{colour}", lw=0.6, alpha=0.4)
    for ax, label in zip(axes, ("‖h_t‖ (mean over the batch)", "‖∂L/∂x_t‖ (mean over the batch)")):
        ax.set_yscale("log")
        _label(ax, "source position t", label)
    axes[1].legend(fontsize=7)
    return fig


def _butterfly(plt, found):
    cells = _cells_with(found, "butterfly")
    if not cells:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cell, runs in cells.items():
        rates = _mean_rows([[o["rate"] for o in r["butterfly"]["by_offset"]] for r in runs])
        line, = ax.plot(range(1, len(rates) + 1), [100 * v for v in rates], marker="o",
                        markersize=3, label=cell)
        base = statistics.fmean(r["butterfly"]["base_rate"] for r in runs)
        ax.axhline(100 * base, color=line.get_color(), linestyle=":", linewidth=1)
    _label(ax, "positions after the first mistake (dotted: the run's error rate overall)",
           "output positions wrong (%)")
    ax.legend(fontsize=7)
    return fig


def _exposure(plt, found):
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    drawn = False
    for cell, runs in found.items():
        runs = [r for r in _ok(runs, "greedy") if r.get("dev_loss") is not None]
        if runs:
            ax.scatter([r["dev_loss"] for r in runs], [100 * r["greedy"]["wer"] for r in runs],
                       label=cell)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    _label(ax, "teacher-forced dev loss (the truth fed at every step)",
           "free-running greedy dev WER (%)")
    ax.legend(fontsize=7)
    return fig


def length_means(runs):
    """``(bucket labels, words per bucket, mean WER per bucket)`` over ``runs`` (each with
    ``wer_by_length``; the buckets of the first run, each mean over the runs that have it)."""
    labels = [b["lengths"] for b in runs[0]["wer_by_length"]]
    words = [b["words"] for b in runs[0]["wer_by_length"]]
    by_label = [{b["lengths"]: b["wer"] for b in r["wer_by_length"]} for r in runs]
    return labels, words, [statistics.fmean(d[k] for d in by_label if k in d) for k in labels]


def length_table(found):
    """Markdown: one row per cell, greedy WER (%) per source-length bucket, the mean over
    the cell's non-diverged runs; the header gives each bucket's word count."""
    cells = _cells_with(found, "wer_by_length")
    if not cells:
        return ""
    labels, words, _ = length_means(next(iter(cells.values())))
    lines = ["| cell | " + " | ".join(f"{k} ({n} words)" for k, n in zip(labels, words)) + " |",
             "|---|" + "---|" * len(labels)]
    for cell, runs in cells.items():
        _, _, values = length_means(runs)
        lines.append(f"| {cell} | " + " | ".join(f"{100 * v:.1f}" for v in values) + " |")
    return "\n".join(lines)


def _length(plt, found):
    cells = _cells_with(found, "wer_by_length")
    if not cells:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cell, runs in cells.items():
        labels, _, values = length_means(runs)
        ax.plot(labels, [100 * v for v in values], marker="o", markersize=3, label=cell)
    _label(ax, "source length (characters)", "greedy WER (%)")
    ax.legend(fontsize=7)
    return fig
