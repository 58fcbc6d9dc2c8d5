"""tfseq2seq/inference/plotting.py: the CJK font choice of attention heatmaps."""

from types import SimpleNamespace

import numpy as np
import pytest

from tfseq2seq.inference import plotting


class FakeFonts:
    """A matplotlib ``font_manager`` stand-in: ``ttflist`` as cached, ``disk`` the font
    files ``findSystemFonts`` would list, each with the family names ``addfont`` adds."""

    def __init__(self, cached, disk):
        self.fontManager = SimpleNamespace(ttflist=[SimpleNamespace(name=n) for n in cached],
                                           addfont=self._add)
        self.disk = disk

    def findSystemFonts(self):
        return list(self.disk)

    def _add(self, path):
        if self.disk[path] is None:
            raise RuntimeError(f"cannot read {path}")
        self.fontManager.ttflist += [SimpleNamespace(name=n) for n in self.disk[path]]


def test_a_cjk_font_installed_after_the_cache_is_found_on_disk_and_simplified_preferred():
    fonts = FakeFonts(["DejaVu Sans"], {
        "/f/NotoSerifCJK-Bad.ttc": None,  # unreadable: skipped
        "/f/DejaVuSerif.ttf": ["DejaVu Serif"],  # not CJK: never added
        "/f/NotoSansCJK-Regular.ttc": ["Noto Sans CJK JP", "Noto Sans CJK SC"]})
    assert plotting._cjk_font(fonts) == {"family": "Noto Sans CJK SC"}
    assert "DejaVu Serif" not in [f.name for f in fonts.fontManager.ttflist]


def test_no_cjk_font_warns_once_and_names_the_package():
    with pytest.warns(UserWarning, match="fonts-noto-cjk") as caught:
        assert plotting._cjk_font(FakeFonts(["DejaVu Sans"], {})) == {}
    assert len(caught) == 1


def test_only_text_with_cjk_characters_asks_for_a_cjk_font(monkeypatch, tmp_path):
    asked = []
    monkeypatch.setattr(plotting, "_cjk_font", lambda fm: asked.append(1) or {})

    def translation(source, text):
        return SimpleNamespace(source=source, text=text, source_tokens=list(source),
                               tokens=text.split(),
                               attention=np.full((len(text.split()), len(source)), 0.5))

    plotting.plot_attention(translation("cat", "K AE T"), tmp_path / "latin.png")
    assert asked == []
    plotting.plot_attention(translation("早上好", "morning"), tmp_path / "zh.png")
    assert asked == [1] and (tmp_path / "zh.png").stat().st_size > 1000
