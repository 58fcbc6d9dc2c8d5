"""Inference with a trained run: ``Translator`` (text in, text out), evaluation and its
metrics, attention plots."""

from tfseq2seq.util.lazy import lazy_exports, names_by_module

__getattr__ = lazy_exports(__name__, names_by_module({
    "translator": ("Translator", "Translation"),
    "evaluation": ("evaluate", "score", "metric_family"),
    "metrics": ("wer_per", "bleu_chrf", "exact_match"),
    "plotting": ("plot_attention",),
}))
