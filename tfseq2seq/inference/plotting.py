"""Attention heatmaps: source tokens on the x axis, output tokens on the y axis; one
translation (``plot_attention``) or a grid of them (``plot_attention_gallery``: one row
per input, one column per decoding, e.g. greedy beside beam search)."""

import os
import warnings

from tfseq2seq.text.scripts import CJK
from tfseq2seq.util.files import atomic_path


def plot_attention(translation, path, title=None):
    """Writes a PNG heatmap of ``translation.attention`` ``[len(tokens), len(source_tokens)]``."""
    return plot_attention_gallery([[(title, translation)]], path)


def plot_attention_gallery(rows, path, column_titles=None):
    """Writes a PNG grid of heatmaps: ``rows`` is a list of rows, each a list of
    ``(title or None, translation)``; ``column_titles`` (optional) head the columns."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    if not rows or not all(rows) or len({len(row) for row in rows}) != 1:
        raise ValueError(f"expected rows of equal, non-zero length; got lengths {[len(r) for r in rows]}")
    cells = [t for row in rows for _, t in row]
    texts = [x for t in cells for x in (*t.source_tokens, *t.tokens, t.source, t.text)]
    font = _cjk_font(font_manager) if any(CJK.search(x) for x in texts) else {}
    width = 1.6 + 0.45 * max(max(len(t.source_tokens), 1) for t in cells)
    height = 1.4 + 0.4 * max(max(len(t.tokens), 1) for t in cells)
    fig, axes = plt.subplots(len(rows), len(rows[0]), squeeze=False,
                             figsize=(width * len(rows[0]), height * len(rows)))
    for r, row in enumerate(rows):
        for c, (title, translation) in enumerate(row):
            heading = title or f"{translation.source} → {translation.text}"
            if column_titles and r == 0:
                heading = f"{column_titles[c]}\n{heading}"
            image = _heatmap(axes[r][c], translation, heading, font)
            fig.colorbar(image, ax=axes[r][c], fraction=0.046, pad=0.04)
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    return os.fspath(path)


def _cjk_font(font_manager):
    """``{"family": name}`` of an installed CJK font for Chinese / Japanese / Korean
    tokens, else ``{}`` with one warning (DejaVu Sans, matplotlib's default, has no
    ideographs: they would be drawn as boxes). A font installed after matplotlib built its
    font cache is found on disk and added."""
    def cjk_names():
        return sorted({f.name for f in font_manager.fontManager.ttflist if "CJK" in f.name})

    names = cjk_names()
    if not names:
        for path in font_manager.findSystemFonts():
            if "CJK" in os.path.basename(path):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        names = cjk_names()
    if not names:
        warnings.warn("the text has CJK characters but no CJK font is installed: they will be "
                      "drawn as boxes (Debian/Ubuntu: apt install fonts-noto-cjk)", stacklevel=3)
        return {}
    simplified = [n for n in names if n.endswith(" SC")]  # Simplified Chinese glyph forms
    return {"family": (simplified or names)[0]}


def _heatmap(ax, translation, title, font):
    weights = translation.attention
    image = ax.imshow(weights if weights.size else [[0.0]], cmap="viridis", vmin=0.0, vmax=1.0,
                      aspect="auto")
    ax.set_xticks(range(len(translation.source_tokens)))
    upright = all(len(t) == 1 for t in translation.source_tokens)  # characters: no need to turn
    ax.set_xticklabels(translation.source_tokens, rotation=0 if upright else 90, **font)
    ax.set_yticks(range(len(translation.tokens)))
    ax.set_yticklabels(translation.tokens, **font)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(title, fontsize=9, **font)
    return image
