"""Attention heatmaps: source tokens on the x axis, output tokens on the y axis."""

import os

from tfseq2seq.util.files import atomic_path


def plot_attention(translation, path, title=None):
    """Writes a PNG heatmap of ``translation.attention`` ``[len(tokens), len(source_tokens)]``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    weights = translation.attention
    rows, cols = max(len(translation.tokens), 1), max(len(translation.source_tokens), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * cols, 1.0 + 0.4 * rows))
    image = ax.imshow(weights if weights.size else [[0.0]], cmap="viridis", vmin=0.0, vmax=1.0,
                      aspect="auto")
    cjk = [f.name for f in font_manager.fontManager.ttflist if "CJK" in f.name]
    font = {"family": cjk[0]} if cjk else {}
    ax.set_xticks(range(len(translation.source_tokens)))
    ax.set_xticklabels(translation.source_tokens, rotation=90, **font)
    ax.set_yticks(range(len(translation.tokens)))
    ax.set_yticklabels(translation.tokens, **font)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(title or f"{translation.source} → {translation.text}", fontsize=9, **font)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return os.fspath(path)
