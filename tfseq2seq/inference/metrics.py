"""Evaluation metrics on decoded strings (Python side).

G2P (CMUdict), following CMU g2p-seq2seq's WER: a word is an error when its
hypothesis equals NONE of its references. PER (g2p-seq2seq reports no PER;
this is our definition): for each word take the reference with the smallest
phoneme edit distance to the hypothesis (ties: the earlier reference), then
PER = sum of those distances / sum of the lengths of those same references.
Translation: corpus BLEU and chrF from sacrebleu, with any number of
references per sentence.
"""

from __future__ import annotations

from typing import Sequence

import sacrebleu


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (unit-cost insert/delete/substitute) between token sequences."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _check(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise ValueError(f"references[{i}] must be a non-empty sequence of strings, got {refs!r}")


def _matches_any(hypothesis: str, refs: Sequence[str]) -> bool:
    tokens = hypothesis.split()
    return any(tokens == ref.split() for ref in refs)


def exact_match(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Fraction of hypotheses equal to any of their references (whitespace-normalized)."""
    _check(hypotheses, references)
    return sum(map(_matches_any, hypotheses, references)) / len(hypotheses)


def wer_per(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """G2P word and phoneme error rates (see module docstring).

    hypotheses: [n] phoneme strings ("HH AH L OW"); references: [n] sequences
    of acceptable phoneme strings. Returns wer, per and the raw counts.
    """
    _check(hypotheses, references)
    word_errors = phone_errors = phones = 0
    for hypothesis, refs in zip(hypotheses, references):
        word_errors += not _matches_any(hypothesis, refs)
        tokens, ref_tokens = hypothesis.split(), [r.split() for r in refs]
        distances = [edit_distance(tokens, r) for r in ref_tokens]
        closest = distances.index(min(distances))
        phone_errors += distances[closest]
        phones += len(ref_tokens[closest])
    return {"wer": word_errors / len(hypotheses), "per": phone_errors / max(phones, 1),
            "words": len(hypotheses), "word_errors": word_errors,
            "phoneme_errors": phone_errors, "reference_phonemes": phones}


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Corpus BLEU and chrF (sacrebleu defaults: 13a tokenization, chrF n=6, beta=2).

    Sentences may have different numbers of references: shorter reference
    lists are padded with None, which sacrebleu skips.
    """
    _check(hypotheses, references)
    streams = max(len(refs) for refs in references)
    ref_streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(streams)]
    bleu = sacrebleu.corpus_bleu(list(hypotheses), ref_streams)
    chrf = sacrebleu.corpus_chrf(list(hypotheses), ref_streams)
    return {"bleu": bleu.score, "chrf": chrf.score}


def wer_by_source_length(sources: Sequence[str], hypotheses: Sequence[str],
                         references: Sequence[Sequence[str]], edges=(4, 6, 8, 10, 12)) -> list:
    """G2P WER per source-length bucket (characters): ``[{"lengths": "≤4", "words": n,
    "wer": x}, {"lengths": "5–6", ...}, ..., {"lengths": ">12", ...}]`` (empty buckets
    left out); where a fixed-size context must carry a long input, long buckets suffer."""
    _check(hypotheses, references)
    if len(sources) != len(hypotheses):
        raise ValueError(f"{len(sources)} sources but {len(hypotheses)} hypotheses")
    bounds = [0, *edges, None]
    rows = []
    for low, high in zip(bounds, bounds[1:]):
        chosen = [i for i, s in enumerate(sources)
                  if len(s) > low and (high is None or len(s) <= high)]
        if chosen:
            label = (f"≤{high}" if low == 0 else f">{low}" if high is None
                     else f"{low + 1}–{high}")
            errors = sum(not _matches_any(hypotheses[i], references[i]) for i in chosen)
            rows.append({"lengths": label, "words": len(chosen), "wer": errors / len(chosen)})
    return rows
