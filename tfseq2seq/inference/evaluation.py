"""Scoring decoded outputs against references: WER/PER for G2P, BLEU/chrF otherwise."""

import json
import os

from tfseq2seq.inference.metrics import bleu_chrf, exact_match, wer_per
from tfseq2seq.util.files import write_text_atomic

G2P_CORPORA = ("cmudict",)


def metric_family(config, corpus_name):
    """``"g2p"`` (WER/PER) or ``"translation"`` (BLEU/chrF) for a run's ``data.metrics``."""
    choice = config.data.metrics
    if choice not in ("auto", "g2p", "translation"):
        raise ValueError(f"data.metrics must be auto, g2p or translation, got {choice!r}")
    if choice == "auto":
        return "g2p" if corpus_name in G2P_CORPORA else "translation"
    return choice


def score(family, hypotheses, references):
    """Metrics for ``hypotheses [n]`` against ``references [n][k]`` (any reference counts);
    ``family`` is ``"g2p"`` (WER/PER) or ``"translation"`` (BLEU/chrF)."""
    if not hypotheses:
        raise ValueError("nothing to score: the split has no examples")
    metrics = {"examples": len(hypotheses), "exact_match": exact_match(hypotheses, references)}
    if family == "g2p":
        metrics.update(wer_per(hypotheses, references))
    else:
        metrics.update(bleu_chrf(hypotheses, references))
    return metrics


def evaluate(translator, corpus, split, beam_width=None, length_penalty=None, limit=None,
             progress=True, max_output_len=None):
    """Decodes ``corpus``'s ``split`` and scores it; returns ``(metrics, translations)``.
    ``beam_width``, ``length_penalty``, ``max_output_len``: see ``Translator.translate``."""
    examples = corpus.examples(split)[:limit]
    translations = translator.translate(
        [ex.source for ex in examples], beam_width=beam_width, length_penalty=length_penalty,
        max_output_len=max_output_len, progress=progress)
    family = metric_family(translator.run.config, corpus.name)
    metrics = score(family, [t.text for t in translations], [ex.references for ex in examples])
    metrics.update(split=split, decoding=f"beam{beam_width}" if beam_width and beam_width > 1 else "greedy")
    return metrics, translations


def write_report(metrics, translations, references, path):
    """Writes metrics and per-example outputs as JSON (atomically)."""
    report = {"metrics": metrics, "outputs": [
        {"source": t.source, "output": t.text, "references": list(refs)}
        for t, refs in zip(translations, references)]}
    write_text_atomic(path, json.dumps(report, ensure_ascii=False, indent=1))
    return os.fspath(path)


def format_table(metrics):
    """A two-column text table of the numeric metrics."""
    rows = [(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in metrics.items()]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
